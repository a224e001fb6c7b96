# find | sort | wc over a generated tree.
find tree -type f | sort | wc -l -c
find tree -type f -name '*7*' | sort | cksum
find tree -type d | sort -r | sed -n '1p;$p'
echo "find done"
