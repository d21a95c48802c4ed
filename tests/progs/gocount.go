// gocount.go: a cgo Go program with an event loop of Go's own: a goroutine writes
// sequence numbers into an os.Pipe, another reads them (waiting in the netpoller, on
// epoll), a channel pipeline doubles them through a C call and checks that none is lost
// or repeated (`BAD ...` otherwise), busy goroutines keep several threads in Go code,
// a time.Ticker counts T every 10 ms and another prints `count N` every
// 100 ms,
// each after a line `state ticks=T piped=P`.
// usage: gocount LIMIT
package main

/*
static int add_one(int x) { return x + 1; }
*/
import "C"

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

func main() {
	limit := 100000
	if len(os.Args) > 1 {
		limit, _ = strconv.Atoi(os.Args[1])
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Println("BAD pipe:", err)
		os.Exit(1)
	}
	go func() {
		for i := 1; ; i++ {
			if _, err := fmt.Fprintf(w, "%d\n", i); err != nil {
				fmt.Println("BAD pipe write:", err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	numbers := make(chan int, 16)
	go func() {
		s := bufio.NewScanner(r)
		for s.Scan() {
			v, err := strconv.Atoi(s.Text())
			if err != nil {
				fmt.Printf("BAD pipe gave %q\n", s.Text())
			}
			numbers <- v
		}
		fmt.Println("BAD pipe reader ended:", s.Err())
	}()
	doubled := make(chan int, 16)
	go func() {
		for v := range numbers {
			doubled <- int(C.add_one(C.int(2*v))) - 1
		}
	}()
	var piped int64
	go func() {
		want := 2
		for v := range doubled {
			if v != want {
				fmt.Printf("BAD pipeline gave %d, expected %d\n", v, want)
			}
			want = v + 2
			atomic.StoreInt64(&piped, int64(v/2))
		}
	}()
	var spins [4]int64
	for i := range spins {
		go func(i int) {
			for {
				for j := 0; j < 10000; j++ {
					atomic.AddInt64(&spins[i], 1)
				}
				time.Sleep(time.Millisecond)
			}
		}(i)
	}
	var ticks int64
	go func() {
		for range time.NewTicker(10 * time.Millisecond).C {
			atomic.AddInt64(&ticks, 1)
		}
	}()
	ticker := time.NewTicker(100 * time.Millisecond)
	for n := 1; n <= limit; n++ {
		<-ticker.C
		fmt.Printf("state ticks=%d piped=%d\ncount %d\n", atomic.LoadInt64(&ticks), atomic.LoadInt64(&piped), n)
	}
	fmt.Printf("done %d\n", limit)
}
