package nbd

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fuzzConn feeds input to one server connection through net.Pipe, reads
// and discards everything the server says, then hangs up; the connection
// must end, without a panic, soon after.
func fuzzConn(t *testing.T, s *Server, input []byte) {
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serveConn(server)
		server.Close()
	}()
	client.SetDeadline(time.Now().Add(10 * time.Second))
	go io.Copy(io.Discard, client)
	client.Write(input) // fails once the server drops the connection
	client.Close()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the server connection did not end after the client hung up")
	}
}

func fuzzServer(t testing.TB) *Server {
	w := &writableExport{memExport: *newMem(4*blockSize, 1)}
	s := NewServer(map[string]Export{"rw": w, "ro": newMem(2*blockSize+17, 2)},
		Options{Log: zerolog.Nop(), HandshakeTimeout: 5 * time.Second, ReplyTimeout: 5 * time.Second})
	t.Cleanup(func() { s.Close() })
	return s
}

// option encodes one option as a client sends it.
func option(opt uint32, data []byte) []byte {
	b := binary.BigEndian.AppendUint64(nil, magicOption)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// FuzzOptions feeds the handshake arbitrary options after valid client
// flags.
func FuzzOptions(f *testing.F) {
	seeds := [][]byte{
		option(optList, nil),
		option(optInfo, goData("rw")),
		append(option(optStructured, nil), option(optGo, goData("ro"))...),
		append(option(optStructured, nil), option(optSetMetaContext, metaData("rw", "base:allocation", "base:"))...),
		option(optListMetaContext, metaData("", "base:")),
		option(optExportName, []byte("rw")),
		option(optStartTLS, nil),
		option(optAbort, nil),
		option(4242, []byte("?")),
		binary.BigEndian.AppendUint32(option(optGo, nil)[:12], 1<<32-1),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzConn(t, s, append(binary.BigEndian.AppendUint32(nil, clientFixed|clientNoZeroes), data...))
	})
}

// FuzzRequests feeds arbitrary requests to a connection that negotiated
// structured replies and base:allocation on a writable export.
func FuzzRequests(f *testing.F) {
	prefix := binary.BigEndian.AppendUint32(nil, clientFixed|clientNoZeroes)
	prefix = append(prefix, option(optStructured, nil)...)
	prefix = append(prefix, option(optSetMetaContext, metaData("rw", allocationContext))...)
	prefix = append(prefix, option(optGo, goData("rw"))...)
	seeds := [][]byte{
		reqBytes(cmdRead, 0, 1, 0, 4096, nil),
		reqBytes(cmdRead, cmdFlagDF, 1, 100, 1, nil),
		reqBytes(cmdWrite, cmdFlagFUA, 2, 10, 3, []byte("abc")),
		reqBytes(cmdBlockStatus, cmdFlagReqOne, 3, 0, 3*blockSize, nil),
		reqBytes(cmdWriteZeroes, cmdFlagNoHole, 4, 0, blockSize, nil),
		reqBytes(cmdTrim, 0, 5, blockSize, blockSize, nil),
		reqBytes(cmdFlush, 0, 6, 0, 0, nil),
		reqBytes(cmdDisc, 0, 7, 0, 0, nil),
		reqBytes(cmdRead, 0, 8, 1<<63, 1<<31, nil),
		reqBytes(99, 0xffff, 9, 0, 0, nil),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzConn(t, s, append(prefix[:len(prefix):len(prefix)], data...))
	})
}
