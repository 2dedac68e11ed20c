package audit

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"
)

// The pid in a FUSE request is the calling thread's id, not its
// process's: a multi-threaded reader (any Go program, qemu, a backup tool)
// reads through many threads, and its reads would be spread over as many
// "pids" that ps and the reader's own logs never show. So the log records
// the process, found once per thread (and then every second at most, as
// thread ids are reused) in /proc/TID/status. A thread that is gone by
// then keeps its thread id, which for a single-threaded process is its
// pid anyway.

// processes maps thread ids to process ids, briefly.
type processes struct {
	mu    sync.Mutex
	m     map[uint32]procEntry
	read  func(tid uint32) (uint32, bool) // /proc; a fake in tests
	now   func() time.Time
	limit int
}

type procEntry struct {
	pid uint32
	at  time.Time
}

const (
	procTTL   = time.Second
	procLimit = 4096 // threads remembered at once
)

func newProcesses(now func() time.Time) *processes {
	return &processes{m: map[uint32]procEntry{}, read: tgidOf, now: now, limit: procLimit}
}

// reader is who with its thread id replaced by its process id.
func (p *processes) reader(who Reader) Reader {
	if who.Pid == 0 {
		return who
	}
	now := p.now()
	p.mu.Lock()
	e, ok := p.m[who.Pid]
	p.mu.Unlock()
	if ok && now.Sub(e.at) < procTTL {
		who.Pid = e.pid
		return who
	}
	tid := who.Pid
	if pid, ok := p.read(tid); ok {
		who.Pid = pid
	}
	p.mu.Lock()
	if len(p.m) >= p.limit {
		clear(p.m)
	}
	p.m[tid] = procEntry{who.Pid, now}
	p.mu.Unlock()
	return who
}

// tgidOf reads the Tgid line of /proc/TID/status.
func tgidOf(tid uint32) (uint32, bool) {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/status")
	if err != nil {
		return 0, false
	}
	_, rest, ok := bytes.Cut(b, []byte("\nTgid:"))
	if !ok {
		return 0, false
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	n, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}
