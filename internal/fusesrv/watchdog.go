package fusesrv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// WatchdogMarker is the first argument that turns a thinroot process into
// a mount's watchdog. WatchdogMain must run first thing in main().
const WatchdogMarker = "__thinroot-fuse-watchdog"

// pollEvery is how often the watchdog looks at the server: a dead
// server's users wait at most about this long for their error.
const pollEvery = 100 * time.Millisecond

// Watch starts the watchdog of the FUSE mount at dir, served by this
// process. It outlives this process on purpose: when this process is
// dying (its main thread gone, even if another thread is stuck in the
// kernel) or gone, it aborts the mount's connection and exits; when the
// connection ends first (a clean unmount), it just exits. Only root can
// abort a connection, so Watch needs root.
func Watch(dir string) error {
	conn, err := Connection(dir)
	if err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	if err := ensureFusectl(); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	start, err := startTime(os.Getpid())
	if err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	// The watchdog keeps the connection's own fusectl directory open: a
	// connection number is reused by the next mount once this one ends,
	// but an ended connection's directory stays dead, so the watchdog
	// can never abort somebody else's.
	ctl, err := os.Open(filepath.Join(fusectl, strconv.FormatUint(conn, 10)))
	if err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	defer ctl.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, WatchdogMarker, strconv.Itoa(os.Getpid()), strconv.FormatUint(start, 10),
		strconv.FormatUint(conn, 10), dir)
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{ctl} // fd 3
	cmd.Stderr = os.Stderr
	// Its own session: a Ctrl-C meant for the server does not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	go cmd.Wait() // reap it when it ends before us
	return nil
}

// WatchdogMain turns this process into a watchdog when it was started as
// one, and never returns then. Otherwise it does nothing.
func WatchdogMain() {
	if len(os.Args) != 6 || os.Args[1] != WatchdogMarker {
		return
	}
	// Nothing inherited may keep a connection open, least of all ours.
	closeFuse()
	pid, err1 := strconv.Atoi(os.Args[2])
	start, err2 := strconv.ParseUint(os.Args[3], 10, 64)
	conn, err3 := strconv.ParseUint(os.Args[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		fmt.Fprintln(os.Stderr, "thinroot fuse watchdog: bad arguments")
		os.Exit(2)
	}
	os.Exit(watch(pid, start, conn, os.Args[5]))
}

// ctlFd is the connection's fusectl directory, passed by Watch.
const ctlFd = 3

// watch waits for the connection to end or the server to die.
func watch(pid int, start, conn uint64, dir string) int {
	for {
		if unix.Faccessat(ctlFd, "abort", unix.F_OK, 0) != nil {
			return 0 // the connection ended
		}
		if dying(pid, start) {
			if err := abortAt(ctlFd); err != nil {
				fmt.Fprintf(os.Stderr, "thinroot fuse watchdog: the server of %s (pid %d) died; abort its connection: %v\n", dir, pid, err)
				return 1
			}
			fmt.Fprintf(os.Stderr, "thinroot fuse watchdog: the server of %s (pid %d) died; aborted its connection, so its users get errors instead of waiting\n", dir, pid)
			return 0
		}
		time.Sleep(pollEvery)
	}
}

// abortAt aborts the connection whose fusectl directory is open at fd;
// one that has ended already needs nothing.
func abortAt(fd int) error {
	f, err := unix.Openat(fd, "abort", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return err
	}
	defer unix.Close(f)
	if _, err := unix.Write(f, []byte("1")); err != nil && err != unix.ENOTCONN {
		return err
	}
	return nil
}

// dying tells whether process pid (started at start, so a reused pid is
// not mistaken for it) is gone or exiting: its main thread is a zombie,
// or SIGKILL is pending (a killed thread stuck in the kernel shows that
// and nothing else).
func dying(pid int, start uint64) bool {
	st, err := readStat(pid)
	if err != nil || st.start != start {
		return true
	}
	return st.state == 'Z' || st.state == 'X' || st.state == 'x' || killPending(pid)
}

// killPending tells whether any thread of pid has SIGKILL pending.
func killPending(pid int) bool {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/status")
	for _, p := range tasks {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok || (k != "SigPnd" && k != "ShdPnd") {
				continue
			}
			if mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil && mask&(1<<(unix.SIGKILL-1)) != 0 {
				return true
			}
		}
	}
	return false
}

type procStat struct {
	state byte
	start uint64
}

// readStat reads a process's state and start time from /proc/PID/stat.
func readStat(pid int) (procStat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name may hold spaces and parentheses: fields start
	// after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return procStat{}, fmt.Errorf("pid %d: unreadable stat", pid)
	}
	f := bytes.Fields(data[i+2:])
	// f[0] is field 3 (state); the start time is field 22.
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("pid %d: short stat", pid)
	}
	t, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return procStat{}, err
	}
	return procStat{state: f[0][0], start: t}, nil
}

// startTime is a process's start time, in clock ticks since boot.
func startTime(pid int) (uint64, error) {
	st, err := readStat(pid)
	return st.start, err
}
