package overlay

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	crashBlocks = 256
	crashOps    = 6000
)

// crashOp is one step of a crash child's deterministic sequence.
type crashOp struct {
	off  int64
	data []byte // nil: discard the block at off
}

// crashSequence is what the child with seed does, op by op: whole-block
// versions, small writes inside a block, and discards.
func crashSequence(seed uint64) []crashOp {
	r := rand.New(rand.NewPCG(seed, 99))
	ops := make([]crashOp, crashOps)
	for i := range ops {
		b := int64(r.IntN(crashBlocks))
		switch k := r.IntN(10); {
		case k < 7:
			ops[i] = crashOp{b * BlockSize, versionBlock(uint64(b), seed<<32|uint64(i))}
		case k < 9:
			n := r.IntN(200) + 1
			at := r.IntN(BlockSize - n)
			p := make([]byte, n)
			for j := range p {
				p[j] = byte(i) | 1
			}
			ops[i] = crashOp{b*BlockSize + int64(at), p}
		default:
			ops[i] = crashOp{b * BlockSize, nil}
		}
	}
	return ops
}

// crashChild runs in the re-executed test binary: it applies the sequence
// and, after each Sync, prints how many ops it covers, until killed.
func crashChild(dir string, seed uint64) {
	ctx := context.Background()
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(2)
	}
	if seed%2 == 0 {
		// Checkpoint at most commits, so that kills land in them too.
		checkpointSlack = 4096
	}
	s, err := Open(dir, Identity{Key: "crash", Describe: "crash test"})
	if err != nil {
		fail(err)
	}
	d, err := s.Disk("d", crashBlocks*BlockSize, &patternBase{size: crashBlocks * BlockSize})
	if err != nil {
		fail(err)
	}
	ops := crashSequence(seed) // before "ready": it takes a while under -race
	fmt.Println("ready")
	r := rand.New(rand.NewPCG(seed, 5))
	next := r.IntN(64) + 1
	for i, op := range ops {
		if op.data == nil {
			err = d.Discard(ctx, op.off, BlockSize)
		} else {
			err = d.WriteAt(ctx, op.data, op.off)
		}
		if err != nil {
			fail(err)
		}
		if i+1 == next {
			if err := d.Sync(); err != nil {
				fail(err)
			}
			fmt.Printf("synced %d\n", i+1)
			next += r.IntN(64) + 1
		}
	}
	fmt.Println("done")
	time.Sleep(time.Hour)
}

// TestCrash kills a writing child with SIGKILL at random moments, five
// times over one folder (every other child checkpoints at most commits). After each kill the folder opens without error,
// and every block holds its content as of the last reported Sync or as of
// a later write to it, never a mix.
func TestCrash(t *testing.T) {
	if dir := os.Getenv("OVERLAY_CRASH_DIR"); dir != "" {
		seed, _ := strconv.ParseUint(os.Getenv("OVERLAY_CRASH_SEED"), 10, 64)
		crashChild(dir, seed)
		return
	}
	ctx := context.Background()
	dir := t.TempDir()
	base := &patternBase{size: crashBlocks * BlockSize}
	state := base.bytes()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for round := range 5 {
		seed := uint64(round + 1)
		delay := time.Duration(r.IntN(1200)+5) * time.Millisecond
		synced := runCrashChild(t, dir, seed, delay)
		acc := acceptable(state, crashSequence(seed), synced)

		s, err := Open(dir, Identity{Key: "crash"})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		d, err := s.Disk("d", base.size, base)
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		if err := d.ReadAt(ctx, state, 0); err != nil {
			t.Fatal(err)
		}
		for b := range crashBlocks {
			if !acc[b][sha256.Sum256(state[b*BlockSize:(b+1)*BlockSize])] {
				t.Fatalf("round %d (killed after %v, %d ops synced): block %d is neither its synced content nor a later one", round, delay, synced, b)
			}
		}
		t.Logf("round %d: killed after %v with %d ops synced; %v", round, delay, synced, d.Warnings())
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runCrashChild starts the child, kills it after delay, and returns the
// ops its last reported Sync covers.
func runCrashChild(t *testing.T, dir string, seed uint64, delay time.Duration) int {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$")
	cmd.Env = append(os.Environ(), "OVERLAY_CRASH_DIR="+dir, fmt.Sprintf("OVERLAY_CRASH_SEED=%d", seed))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	synced := 0
	for l := range lines {
		switch {
		case l == "ready":
			// The delay runs from the open, so it falls among writes.
			go func() {
				time.Sleep(delay)
				cmd.Process.Kill() // SIGKILL, at whatever the child is doing
			}()
		case l == "done":
			cmd.Process.Kill()
		case strings.HasPrefix(l, "synced "):
			synced, _ = strconv.Atoi(strings.TrimPrefix(l, "synced "))
		case strings.HasPrefix(l, "error"):
			cmd.Process.Kill()
			t.Fatalf("child: %s", l)
		}
	}
	cmd.Wait()
	return synced
}

// acceptable lists, per block, the hashes of the contents it may hold
// after a crash: its content after op synced, or after any later op.
func acceptable(start []byte, ops []crashOp, synced int) []map[[32]byte]bool {
	model := append([]byte(nil), start...)
	acc := make([]map[[32]byte]bool, crashBlocks)
	blk := func(b int) []byte { return model[b*BlockSize : (b+1)*BlockSize] }
	addAll := func() {
		for b := range acc {
			acc[b] = map[[32]byte]bool{sha256.Sum256(blk(b)): true}
		}
	}
	for i, op := range ops {
		if i == synced {
			addAll()
		}
		if op.data == nil {
			clear(model[op.off : op.off+BlockSize])
		} else {
			copy(model[op.off:], op.data)
		}
		if i >= synced {
			b := int(op.off / BlockSize)
			acc[b][sha256.Sum256(blk(b))] = true
		}
	}
	if synced == len(ops) {
		addAll()
	}
	return acc
}
