package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// daemonize runs the mount in a background copy of this process and waits
// until that copy reports the mount ready, or reports why it failed. So the
// command returns only when the mount can be used (mount(8) and scripts
// rely on that), and a failure is reported with the child's message and
// exit code, with no mount left behind. Until it is ready, the child logs its
// warnings and errors to our stderr, so archive damage reaches the user's
// terminal; on success nothing else is printed (the log file has it all).
func daemonize(args []string, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "ovfmount: cannot find my own executable: %v\n", err)
		return exitInternal
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(stderr, "ovfmount: %v\n", err)
		return exitInternal
	}
	cmd := exec.Command(exe, append([]string{"--foreground", "--notify-fd=3"}, args...)...)
	cmd.ExtraFiles = []*os.File{w} // fd 3 in the child
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // leave the terminal's session
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "ovfmount: starting the background process: %v\n", err)
		return exitDaemon
	}
	w.Close()
	line, _ := bufio.NewReader(r).ReadString('\n')
	r.Close()
	switch {
	case line == "ok\n":
		cmd.Process.Release()
		return exitOK
	case strings.HasPrefix(line, "err "):
		code, msg, _ := strings.Cut(strings.TrimSuffix(line[4:], "\n"), " ")
		n, err := strconv.Atoi(code)
		if err != nil {
			n = exitInternal
		}
		fmt.Fprintf(stderr, "ovfmount: %s\n", msg)
		cmd.Wait()
		return n
	}
	err = cmd.Wait()
	fmt.Fprintf(stderr, "ovfmount: the background process exited before the mount was ready (%v)\n", err)
	return exitDaemon
}

// notify tells the waiting parent that the mount is ready (err == nil) or
// why it failed, in one line.
func notify(fd int, result error) error {
	f := os.NewFile(uintptr(fd), "notify")
	defer f.Close()
	msg := "ok\n"
	if result != nil {
		// One line: inner newlines become "; ", and a trailing one (as
		// some library errors end) would leave a dangling "; ".
		text := strings.TrimRight(result.Error(), "\n")
		msg = fmt.Sprintf("err %d %s\n", codeOf(result), strings.ReplaceAll(text, "\n", "; "))
	}
	_, err := f.WriteString(msg)
	return err
}

// detachStdio points stdin, stdout and stderr at /dev/null once the mount is
// ready, so the background process holds no terminal and its stray output
// goes nowhere.
func detachStdio() {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return
	}
	for fd := 0; fd <= 2; fd++ {
		syscall.Dup3(int(null.Fd()), fd, 0)
	}
	null.Close()
}
