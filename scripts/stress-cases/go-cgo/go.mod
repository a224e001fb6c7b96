module example.com/stress/gocgo

go 1.19
