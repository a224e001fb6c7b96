# Hashes, regular expressions, sorting and sprintf; a forked child; a pipe from sort(1).
# Exits 3.
use strict;
use warnings;
$| = 1;

my %count;
for my $i (1 .. 150000) {
    my $word = join '', map { chr(97 + ($i * $_ * 7) % 26) } 1 .. 3;
    $count{$word}++;
}
my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 4];
printf "%s %d\n", $_, $count{$_} for @top;

my $text = join ' ', map { sprintf 'item%05d', $_ * 37 % 10007 } 1 .. 20000;
my @matches = $text =~ /item(\d*7\d*7)\b/g;
print scalar(@matches), " matches, first $matches[0]\n";

my @primes = grep { my $n = $_; !grep { $n % $_ == 0 } 2 .. sqrt $n } 2 .. 30000;
print scalar(@primes), " primes, last $primes[-1]\n";

my $pid = fork // die "fork: $!";
if ($pid == 0) {
    my $sum = 0;
    $sum += $_ * $_ % 13 for 1 .. 300000;
    print "child sum $sum\n";
    exit 5;
}
waitpid $pid, 0;
print "child status ", $? >> 8, "\n";

open my $sorted, '-|', 'sort', '-r', 'numbers.txt' or die "sort: $!";
my @lines = <$sorted>;
close $sorted or die "sort failed";
print "sorted ", scalar(@lines), " lines, first $lines[0]";
exit 3;
