# bash pipelines, a command substitution, a subshell and bash's own arithmetic; exits 7.
seq 1 300000 | grep 7 | sort -r | tr 0-9 a-j | cksum
echo "pipeline status ${PIPESTATUS[*]}"
lines=$(seq 1 50000 | wc -l)
echo "lines $lines"
(cd inputs && sort -n numbers.txt | uniq -c | sort -rn | sed -n '1,3p')
sum=0
for ((i = 0; i < 30000; i++)); do sum=$((sum + i * i % 7)); done
echo "sum $sum"
exit 7
