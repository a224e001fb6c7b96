module example.com/stress/hello

go 1.19
