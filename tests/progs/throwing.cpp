/* throwing.cpp: C++ exceptions thrown and caught in several threads at once, all the
 * time, so that a checkpoint finds threads inside the unwinder (which walks the loaded
 * objects with dl_iterate_phdr, under glibc's loader lock) and inside operator new.
 *
 * NTHREADS threads each throw and catch an exception carrying a std::string and a
 * vector in a loop, checking what they catch, and count their catches. Main prints
 * `start PID`, then every ~50 ms `count N` (after checking that no thread went without
 * a catch for 60 counts: a thread stuck in the unwinder would), `catches MIN` every 10
 * counts, and `done LIMIT`.
 * Any problem prints `BAD ...` and exits 3.
 *
 * usage: throwing [LIMIT]
 */
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

static const int NTHREADS = 6;
static std::atomic<long> catches[NTHREADS];

[[noreturn]] static void bad(const char *what, long detail) {
    std::printf("BAD %s %ld\n", what, detail);
    std::fflush(stdout);
    std::exit(3);
}

struct Thrown {
    std::string text;
    std::vector<long> values;
};

__attribute__((noinline)) static void deep(int level, long n) {
    if (level == 0) throw Thrown{"thrown " + std::to_string(n), std::vector<long>(8, n)};
    deep(level - 1, n);
}

static void worker(int i) {
    for (long n = 0;; n++) {
        try {
            deep(5 + i % 3, n);
            bad("no exception", n);
        } catch (const Thrown &t) {
            if (t.text != "thrown " + std::to_string(n) || t.values.size() != 8 || t.values[7] != n)
                bad("caught the wrong exception", n);
        }
        try {
            std::vector<int>().at(1);
        } catch (const std::out_of_range &) {
            catches[i]++;
        }
    }
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? std::atol(argv[1]) : 100000;
    setvbuf(stdout, nullptr, _IOLBF, 0);
    for (int i = 0; i < NTHREADS; i++) std::thread(worker, i).detach();
    std::printf("start %d\n", (int)getpid());
    long seen[NTHREADS] = {}, moved_at[NTHREADS] = {};
    for (long n = 1; n <= limit; n++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        long least = -1;
        for (int i = 0; i < NTHREADS; i++) {
            long c = catches[i].load();
            if (c != seen[i]) moved_at[i] = n;
            if (n - moved_at[i] > 60) bad("no progress in thread", i);
            seen[i] = c;
            if (least < 0 || c < least) least = c;
        }
        if (n % 10 == 0) std::printf("catches %ld\n", least);
        std::printf("count %ld\n", n);
    }
    std::printf("done %ld\n", limit);
    return 0;
}
