package main

import (
	"fmt"
	"io"
	"log/syslog"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// logSink lets a daemonized mount move its log from the terminal it
// started on to its log file (or syslog) once the mount is ready, without
// rebuilding every logger that holds it.
type logSink struct {
	mu  sync.Mutex
	dst zerolog.LevelWriter
}

func (s *logSink) Write(p []byte) (int, error) {
	return s.WriteLevel(zerolog.NoLevel, p)
}

func (s *logSink) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dst.WriteLevel(l, p)
}

// tee sends the log to w as well as to the current destination, so that a
// background mount's log file also holds its start-up lines.
func (s *logSink) tee(w zerolog.LevelWriter) {
	s.mu.Lock()
	s.dst = zerolog.MultiLevelWriter(s.dst, w)
	s.mu.Unlock()
}

// onlyProblems keeps, of what goes to the current destination, only
// warnings and errors. A background mount logs to the terminal it started
// on until it is ready; that terminal should hear of an archive's damage
// or a failure, and otherwise nothing, as archivemount and sshfs say
// nothing when they succeed. A destination teed afterwards (the log
// file) still gets every line.
func (s *logSink) onlyProblems() {
	s.mu.Lock()
	s.dst = atLeast{w: s.dst, min: zerolog.WarnLevel}
	s.mu.Unlock()
}

// atLeast drops the entries below min, and those with no level (go-fuse's
// own logger, whose lines are debug output), from w.
type atLeast struct {
	w   zerolog.LevelWriter
	min zerolog.Level
}

func (a atLeast) Write(p []byte) (int, error) { return a.WriteLevel(zerolog.NoLevel, p) }

func (a atLeast) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	if l < a.min || l == zerolog.NoLevel {
		return len(p), nil
	}
	return a.w.WriteLevel(l, p)
}

func (s *logSink) set(w zerolog.LevelWriter) {
	s.mu.Lock()
	s.dst = w
	s.mu.Unlock()
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// formatted wraps w in the requested format: JSON as is, or zerolog's
// console writer for people (in colour only on a terminal, and never with
// NO_COLOR set).
func formatted(w io.Writer, format string, tty bool) (zerolog.LevelWriter, error) {
	switch format {
	case "auto":
		if !tty {
			return zerolog.LevelWriterAdapter{Writer: w}, nil
		}
	case "json":
		return zerolog.LevelWriterAdapter{Writer: w}, nil
	case "console":
	default:
		return nil, fmt.Errorf("--log-format must be auto, console or json, not %q", format)
	}
	_, noColor := os.LookupEnv("NO_COLOR")
	cw := zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: noColor || !tty}
	return zerolog.LevelWriterAdapter{Writer: cw}, nil
}

// newLogger builds the logger, writing to stderr for now.
//
// zerolog's Dur writes a duration as a bare number of milliseconds (its
// default DurationFieldUnit), so every duration field, here and in the
// packages this logger is handed to, is named with its unit: "took_ms",
// "retry_in_ms".
func newLogger(cfg *mountConfig) (zerolog.Logger, *logSink, error) {
	level, err := zerolog.ParseLevel(cfg.logLevel)
	if err != nil || cfg.logLevel == "" {
		return zerolog.Logger{}, nil, fmt.Errorf("--log-level must be trace, debug, info, warn or error, not %q", cfg.logLevel)
	}
	w, err := formatted(os.Stderr, cfg.logFormat, isTerminal(os.Stderr))
	if err != nil {
		return zerolog.Logger{}, nil, err
	}
	sink := &logSink{dst: w}
	ctx := zerolog.New(sink).Level(level).With().Timestamp()
	if level <= zerolog.DebugLevel {
		ctx = ctx.Caller()
	}
	return ctx.Logger(), sink, nil
}

// detachedWriter is where a background mount logs once it no longer has a
// terminal: the --log-file, else syslog, else nothing.
func detachedWriter(cfg *mountConfig) (zerolog.LevelWriter, string, error) {
	if cfg.logFile != "" {
		f, err := os.OpenFile(cfg.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, "", fmt.Errorf("--log-file: %w", err)
		}
		format := cfg.logFormat
		if format == "auto" {
			format = "json"
		}
		w, err := formatted(f, format, false)
		return w, cfg.logFile, err
	}
	if sl, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "ovfmount"); err == nil {
		return zerolog.SyslogLevelWriter(sl), "syslog", nil
	}
	return zerolog.LevelWriterAdapter{Writer: io.Discard}, "", nil
}

// warnLogger is the log of the info and verify commands: warnings only
// (a retried request, a remote file that changed), for people, on w.
func warnLogger(w io.Writer) zerolog.Logger {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = isTerminal(f)
	}
	lw, _ := formatted(w, "console", tty)
	return zerolog.New(lw).Level(zerolog.WarnLevel).With().Timestamp().Logger()
}
