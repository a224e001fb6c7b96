// Recursive fib for ARGS[0] ms of the main thread's CPU time (default 1000); prints "fib ok true".
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;

public class Fib {
    static int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

    public static void main(String[] args) {
        long budgetNs = Long.parseLong(args.length > 0 ? args[0] : "1000") * 1_000_000L;
        ThreadMXBean bean = ManagementFactory.getThreadMXBean();
        long start = bean.getCurrentThreadCpuTime();
        long total = 0;
        while (bean.getCurrentThreadCpuTime() - start < budgetNs) total += fib(25);
        System.out.println("fib ok " + (total > 0));
    }
}
