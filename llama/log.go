package llama

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
)

// ggml's log levels (enum ggml_log_level).
const (
	ggmlLogDebug = 1
	ggmlLogInfo  = 2
	ggmlLogWarn  = 3
	ggmlLogError = 4
	ggmlLogCont  = 5
)

// LevelTrace is the slog level that llama.cpp's debug output maps to; it is
// below slog.LevelDebug so that turning on debug logging for an application
// does not also turn on ggml's per-graph chatter.
const LevelTrace = slog.LevelDebug - 4

// logSink turns llama.cpp's log callback, which delivers fragments that
// end in a newline (or continue the previous one with GGML_LOG_LEVEL_CONT),
// into one slog record per line. It also remembers the last error line so
// that failures that return only NULL (model load, adapter load) can say
// why.
var logSink = &sink{}

type sink struct {
	log atomic.Pointer[slog.Logger]

	mu    sync.Mutex
	buf   strings.Builder
	level int      // level of the line in buf
	errs  []string // error lines since the last takeErrors, bounded
}

// maxErrs bounds the error lines kept between two takeErrors calls.
const maxErrs = 16

// SetLogger routes llama.cpp's and ggml's log output to l. A nil l restores
// the default, slog.Default(). llama.cpp's INFO lines (model load details)
// are logged at slog.LevelDebug, its DEBUG lines at LevelTrace, WARN and
// ERROR at their slog equivalents.
func SetLogger(l *slog.Logger) { logSink.log.Store(l) }

// skip reports whether a fragment at level would be dropped, so that the
// callback need not copy it: its line's level is not enabled, and no part
// of a line is pending. Error lines are never skipped (takeLastError keeps
// them). A GPU backend logs a debug line for every decoded token; without
// this each cost two allocations even with debug logging off.
func (s *sink) skip(level int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buf.Len() > 0 {
		return false
	}
	if level == ggmlLogCont {
		level = s.level
	}
	if level == ggmlLogError || s.logger().Enabled(context.Background(), slogLevel(level)) {
		return false
	}
	s.level = level
	return true
}

func (s *sink) write(level int, text string) {
	s.mu.Lock()
	if level != ggmlLogCont {
		if s.buf.Len() > 0 { // a line that never got its newline
			s.flushLocked()
		}
		s.level = level
	}
	s.buf.WriteString(text)
	var line string
	var lvl int
	if strings.HasSuffix(text, "\n") {
		line, lvl = strings.TrimRight(s.buf.String(), "\n"), s.level
		s.buf.Reset()
		if lvl == ggmlLogError {
			s.noteErrLocked(line)
		}
	}
	s.mu.Unlock()
	if line != "" {
		s.emit(lvl, line)
	}
}

// flushLocked emits a partial line; caller holds s.mu. It is rare (only
// when llama.cpp logs without a trailing newline), so emitting under the
// lock is acceptable: slog handlers do not call back into llama.cpp.
func (s *sink) flushLocked() {
	line := s.buf.String()
	s.buf.Reset()
	if s.level == ggmlLogError {
		s.noteErrLocked(line)
	}
	s.emit(s.level, line)
}

func (s *sink) emit(level int, line string) {
	l, sl := s.logger(), slogLevel(level)
	ctx := context.Background()
	if l.Enabled(ctx, sl) {
		l.Log(ctx, sl, line, slog.String("source", "llama.cpp"))
	}
}

// logger is the logger SetLogger set, or slog.Default().
func (s *sink) logger() *slog.Logger {
	if l := s.log.Load(); l != nil {
		return l
	}
	return slog.Default()
}

// slogLevel maps a ggml log level to slog's.
func slogLevel(level int) slog.Level {
	switch level {
	case ggmlLogDebug:
		return LevelTrace
	case ggmlLogInfo:
		return slog.LevelDebug
	case ggmlLogWarn:
		return slog.LevelWarn
	case ggmlLogError:
		return slog.LevelError
	}
	return slog.LevelDebug
}

// noteErrLocked records an error line; caller holds s.mu.
func (s *sink) noteErrLocked(line string) {
	if len(s.errs) < maxErrs {
		s.errs = append(s.errs, line)
	}
}

// takeLastError returns the first error line llama.cpp logged since the
// previous call, and forgets them all. The first is the cause: llama.cpp
// follows it with generic lines such as "failed to load model". Errors of
// concurrent operations can mix; the detail is a diagnosis, not a contract.
func (s *sink) takeLastError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var e string
	if len(s.errs) > 0 {
		e = s.errs[0]
	}
	s.errs = s.errs[:0]
	return e
}
