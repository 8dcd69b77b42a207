// Command testapp is the program in Thicket's test image (see package
// testimage). Its mode is chosen by its arguments:
//
//	testapp                 HTTP server on $PORT (default 8080) answering
//	                        "hello from <$INSTANCE or host name>"; logs each
//	                        request to stdout
//	testapp exit N          prints a line, exits with code N
//	testapp crash-after S   serves, then exits with code 1 after S seconds
//	testapp print N         prints N numbered lines, exits 0
//	testapp die S N         prints "starting", sleeps S seconds, prints
//	                        "fatal" to stderr and exits with code N at once
//	                        (the last words of a quick crash)
//	testapp alloc MB        allocates and touches MB MiB, prints
//	                        "allocated MB MiB", exits 0 (under a smaller
//	                        memory limit it is killed first)
//	testapp spin S          serves, and keeps one core busy for the first S
//	                        seconds (to test CPU usage)
//	testapp jobs            prints $THICKET_JOBS and $THICKET_INSTANCE_INDEX,
//	                        then "jobs <version>: <a,b,...>" whenever the job
//	                        file ($THICKET_JOBS_FILE) changes (read every
//	                        200 ms); runs until stopped
//	testapp jobs-poll       long-polls $THICKET_JOBS_URL (?after=<last
//	                        version>) and prints "poll <version>: <a,b,...>"
//	                        (" lease expired" added when so) whenever the
//	                        answer changes, "poll error: ..." on errors;
//	                        runs until stopped
//	testapp fetch URL N     GETs URL N times, 200 ms apart, printing
//	                        "fetch <i>: <answer>" or "fetch <i>: error ...";
//	                        exits 0 after N (N=0: forever)
//	testapp probe           prints what the sandbox allows ("probe <what>:
//	                        <answer>" lines: raw-socket, NoNewPrivs,
//	                        Seccomp, CapEff, proc-sys, interfaces), then
//	                        "probe done";
//	                        exits 0
//	testapp forkbomb N      starts up to N child processes ("testapp
//	                        hold") until one fails, prints "forkbomb
//	                        started K" and the failure, then "forkbomb
//	                        done", and holds them until terminated
//	testapp hold            sleeps until terminated
//	testapp index-fail-once I
//	                        an index of an indexed job: prints "index <i>
//	                        of <n> done" ($THICKET_INSTANCE_INDEX,
//	                        $THICKET_COMPLETIONS) and exits 0, except that
//	                        index I's first run (no marker file in its root
//	                        filesystem yet) writes the marker, prints
//	                        "index <i> failing once" and exits 1
//
// It exits 0 on SIGTERM, unless IGNORE_SIGTERM=1 (to test SIGKILL after a
// grace period).
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	args := os.Args[1:]
	mode := ""
	if len(args) > 0 {
		mode = args[0]
	}
	switch mode {
	case "":
		handleSignals()
		serve()
	case "exit":
		code := intArg(args, 0)
		fmt.Printf("exiting with code %d\n", code)
		os.Exit(code)
	case "crash-after":
		secs := intArg(args, 1)
		handleSignals()
		go func() {
			time.Sleep(time.Duration(secs) * time.Second)
			fmt.Printf("crashing after %d s\n", secs)
			os.Exit(1)
		}()
		serve()
	case "spin":
		secs := intArg(args, 10)
		handleSignals()
		go spin(time.Duration(secs) * time.Second)
		serve()
	case "jobs":
		handleSignals()
		watchJobs(os.Getenv("THICKET_JOBS_FILE"))
	case "jobs-poll":
		handleSignals()
		pollJobs(os.Getenv("THICKET_JOBS_URL"))
	case "fetch":
		if len(args) < 2 {
			fmt.Fprintln(os.Stderr, "testapp: fetch URL [N]")
			os.Exit(64)
		}
		handleSignals()
		fetch(args[1], intArg(args[1:], 0))
	case "index-fail-once":
		indexFailOnce(intArg(args, 0))
	case "work":
		// A job: works for N seconds (serving meanwhile), then ends well.
		secs := intArg(args, 30)
		handleSignals()
		fmt.Printf("working for %d s\n", secs)
		go serve()
		time.Sleep(time.Duration(secs) * time.Second)
		fmt.Println("work done")
		os.Exit(0)
	case "chatty":
		// Prints a 4 KB line every N ms (10 if not given), serving meanwhile.
		every := time.Duration(intArg(args, 10)) * time.Millisecond
		handleSignals()
		go serve()
		line := strings.Repeat("x", 4000)
		for i := 0; ; i++ {
			fmt.Printf("chatty %d %s\n", i, line)
			time.Sleep(every)
		}
	case "alloc":
		mb := intArg(args, 0)
		fmt.Printf("allocating %d MiB\n", mb)
		b := make([]byte, mb<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		fmt.Printf("allocated %d MiB\n", mb)
		os.Exit(0)
	case "probe":
		probe()
		os.Exit(0)
	case "forkbomb":
		handleSignals()
		forkbomb(intArg(args, 100))
		time.Sleep(365 * 24 * time.Hour)
	case "hold":
		handleSignals()
		time.Sleep(365 * 24 * time.Hour)
	case "die":
		secs := intArg(args, 1)
		code := 3
		if len(args) > 2 {
			code = intArg(args[1:], 3)
		}
		fmt.Println("starting")
		time.Sleep(time.Duration(secs) * time.Second)
		fmt.Fprintln(os.Stderr, "fatal")
		os.Exit(code)
	case "print":
		n := intArg(args, 0)
		for i := 1; i <= n; i++ {
			fmt.Printf("line %d\n", i)
		}
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "testapp: unknown mode %q\n", mode)
		os.Exit(64)
	}
}

func intArg(args []string, def int) int {
	if len(args) < 2 {
		return def
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "testapp: %s: bad number %q\n", args[0], args[1])
		os.Exit(64)
	}
	return n
}

// sink keeps spin's arithmetic from being optimised away.
var sink uint64

// spin burns CPU on one goroutine for d.
func spin(d time.Duration) {
	fmt.Printf("spinning for %v\n", d)
	x := uint64(1)
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := 0; i < 1_000_000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	sink = x
	fmt.Println("done spinning")
}

func handleSignals() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for s := range c {
			if os.Getenv("IGNORE_SIGTERM") == "1" {
				fmt.Printf("ignoring %v\n", s)
				continue
			}
			fmt.Printf("terminating on %v\n", s)
			os.Exit(0)
		}
	}()
}

func serve() {
	name := os.Getenv("INSTANCE")
	if name == "" {
		name, _ = os.Hostname()
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		fmt.Printf("%s %s from %s\n", req.Method, req.URL.Path, req.RemoteAddr)
		fmt.Fprintf(w, "hello from %s\n", name)
	})
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testapp: %v\n", err)
		os.Exit(2)
	}
	fmt.Printf("listening on %s as %s\n", ln.Addr(), name)
	if err := http.Serve(ln, nil); err != nil {
		fmt.Fprintf(os.Stderr, "testapp: %v\n", err)
		os.Exit(2)
	}
}

// fetch GETs url n times (forever if n is 0), 200 ms apart.
func fetch(url string, n int) {
	// A new connection per request: service IPs balance connections.
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 1; n == 0 || i <= n; i++ {
		resp, err := c.Get(url)
		if err != nil {
			fmt.Printf("fetch %d: error %v\n", i, err)
		} else {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			fmt.Printf("fetch %d: %s\n", i, strings.TrimSpace(string(b)))
		}
		if n == 0 || i < n {
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// watchJobs prints the environment's jobs, then the job file's content
// whenever it changes.
func watchJobs(file string) {
	fmt.Printf("start: index %s, pool %s, jobs %q at version %s\n", os.Getenv("THICKET_INSTANCE_INDEX"),
		os.Getenv("THICKET_POOL_SIZE"), os.Getenv("THICKET_JOBS"), os.Getenv("THICKET_JOBS_VERSION"))
	last := ""
	for {
		b, err := os.ReadFile(file)
		now := strings.TrimSpace(string(b))
		if err != nil {
			now = "error: " + err.Error()
		}
		if now != last {
			var f struct {
				Version int64    `json:"version"`
				Jobs    []string `json:"jobs"`
			}
			if json.Unmarshal(b, &f) == nil {
				fmt.Printf("jobs %d: %s\n", f.Version, strings.Join(f.Jobs, ","))
			} else {
				fmt.Printf("job file: %s\n", now)
			}
			last = now
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pollJobs long-polls the job endpoint and prints each new answer.
func pollJobs(url string) {
	fmt.Printf("polling %s\n", url)
	client := &http.Client{Timeout: 90 * time.Second}
	last, after := "", int64(-1)
	for {
		u := url
		if after >= 0 {
			u += "?after=" + strconv.FormatInt(after, 10)
		}
		resp, err := client.Get(u)
		if err != nil {
			fmt.Printf("poll error: %v\n", err)
			time.Sleep(500 * time.Millisecond)
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		var f struct {
			Version      int64    `json:"version"`
			Jobs         []string `json:"jobs"`
			LeaseExpired bool     `json:"lease_expired"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &f) != nil {
			fmt.Printf("poll error: %s: %s\n", resp.Status, strings.TrimSpace(string(b)))
			time.Sleep(500 * time.Millisecond)
			continue
		}
		line := fmt.Sprintf("poll %d: %s", f.Version, strings.Join(f.Jobs, ","))
		if f.LeaseExpired {
			line += " lease expired"
		}
		if line != last {
			fmt.Println(line)
			last = line
		}
		after = f.Version
	}
}

// indexFailOnce is the mode index-fail-once: index fail fails its first
// run, remembered by a marker in the container's root filesystem, which a
// restart keeps.
func indexFailOnce(fail int) {
	const marker = "/index-failed-once"
	i, n := os.Getenv("THICKET_INSTANCE_INDEX"), os.Getenv("THICKET_COMPLETIONS")
	if i == strconv.Itoa(fail) {
		if _, err := os.Stat(marker); os.IsNotExist(err) {
			if err := os.WriteFile(marker, []byte("1"), 0o644); err != nil {
				fmt.Printf("index %s cannot write its marker: %v\n", i, err)
				os.Exit(2)
			}
			fmt.Printf("index %s failing once\n", i)
			os.Exit(1)
		}
	}
	fmt.Printf("index %s of %s done\n", i, n)
	os.Exit(0)
}
