package main

import (
	"bytes"
	"log"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// A background mount's terminal gets warnings and errors only, the log
// file teed after it every line, including go-fuse's unlevelled ones.
func TestOnlyProblems(t *testing.T) {
	var terminal, file bytes.Buffer
	sink := &logSink{dst: zerolog.LevelWriterAdapter{Writer: &terminal}}
	sink.onlyProblems()
	sink.tee(zerolog.LevelWriterAdapter{Writer: &file})
	l := zerolog.New(sink).Level(zerolog.DebugLevel)
	l.Debug().Msg("d")
	l.Info().Msg("mounted")
	l.Warn().Msg("shadowed duplicate")
	l.Error().Msg("lazy unmount failed")
	log.New(l, "", 0).Print("go-fuse says")

	if got, want := lines(terminal.String()), []string{"shadowed duplicate", "lazy unmount failed"}; !slices.Equal(got, want) {
		t.Errorf("the terminal got %q, want %q", got, want)
	}
	if got, want := lines(file.String()), []string{"d", "mounted", "shadowed duplicate", "lazy unmount failed", "go-fuse says"}; !slices.Equal(got, want) {
		t.Errorf("the file got %q, want %q", got, want)
	}
}

// lines are the messages of a JSON log, in order.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		_, msg, _ := strings.Cut(l, `"message":"`)
		out = append(out, strings.TrimSuffix(msg, `"}`))
	}
	return out
}
