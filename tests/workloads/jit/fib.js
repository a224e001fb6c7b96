// Recursive fib for ARGV ms of CPU time.
function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
const budget = Number(process.argv[2] || 1000) * 1000;
let total = 0;
const start = process.cpuUsage();
while (true) {
  total += fib(25);
  const used = process.cpuUsage(start);
  if (used.user + used.system >= budget) break;
}
console.log("fib ok", total > 0);
