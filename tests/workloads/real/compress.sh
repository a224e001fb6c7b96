# gzip and xz round trips of data.bin: the checksums of the original and of both decompressed
# copies must agree; the compressed files' checksums show the compressors' output is unchanged.
set -e
cksum < data.bin
gzip -n -6 -c data.bin > data.gz
xz -3 -T2 --block-size=1MiB -c data.bin > data.xz
cksum < data.gz
cksum < data.xz
gzip -dc data.gz | cksum
xz -dc data.xz | cksum
echo "compress done"
