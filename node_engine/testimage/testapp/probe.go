package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// probe prints what the sandbox lets this process do.
func probe() {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_ICMP)
	if err == nil {
		syscall.Close(fd)
		fmt.Println("probe raw-socket: ok")
	} else {
		fmt.Printf("probe raw-socket: %v\n", err)
	}
	if f, err := os.Open("/proc/self/status"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			switch k {
			case "NoNewPrivs", "Seccomp", "CapEff":
				if ok {
					fmt.Printf("probe %s: %s\n", k, strings.TrimSpace(v))
				}
			}
		}
		f.Close()
	}
	// The user namespace: host IDs of the container's, and who owns its
	// root filesystem as the container sees it.
	if b, err := os.ReadFile("/proc/self/uid_map"); err == nil {
		fmt.Printf("probe uid_map: %s\n", strings.Join(strings.Fields(string(b)), " "))
	}
	if fi, err := os.Stat("/"); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			fmt.Printf("probe root-owner: %d\n", st.Uid)
		}
	}
	if f, err := os.OpenFile("/proc/sys/kernel/domainname", os.O_WRONLY, 0); err == nil {
		f.Close()
		fmt.Println("probe proc-sys: writable")
	} else {
		fmt.Printf("probe proc-sys: %v\n", err)
	}
	if ifs, err := net.Interfaces(); err == nil {
		var names []string
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		fmt.Printf("probe interfaces: %s\n", strings.Join(names, ","))
	}
	fmt.Println("probe done")
}

// forkbomb starts up to n children that hold until terminated.
func forkbomb(n int) {
	self, err := os.Executable()
	if err != nil {
		self = "/testapp"
	}
	started := 0
	var failure error
	for ; started < n; started++ {
		cmd := exec.Command(self, "hold")
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
		if err := cmd.Start(); err != nil {
			failure = err
			break
		}
	}
	fmt.Printf("forkbomb started %d\n", started)
	if failure != nil {
		fmt.Printf("forkbomb refused: %v\n", failure)
	}
	fmt.Println("forkbomb done")
}
