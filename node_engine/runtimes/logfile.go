package runtimes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DefaultLogMaxBytes bounds each part of an instance's log file on the
// node (see TrimLog): an instance's log takes at most about twice that.
const DefaultLogMaxBytes = 4 << 20

// LogTrimEvery is how often KeepLogsBounded looks at the log files.
const LogTrimEvery = 5 * time.Second

// rotated names the previous part of a log file.
func rotated(file string) string { return file + ".1" }

// TrimLog bounds a log file that its writers hold open for appending (the
// containerd shim, a module's output): when it is larger than max bytes,
// its content becomes file.1 (replacing the previous part) and the file is
// emptied in place; its writers go on at its new end. What they write
// between the copy and the truncation (a moment) is lost. It reports
// whether the file was rotated; a missing file is not an error.
func TrimLog(file string, max int64) (bool, error) {
	fi, err := os.Stat(file)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil || fi.Size() <= max {
		return false, err
	}
	src, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return false, err
	}
	defer src.Close()
	tmp := rotated(file) + ".tmp"
	dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return false, err
	}
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = src.Truncate(0)
	}
	if err == nil {
		err = os.Rename(tmp, rotated(file))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return false, fmt.Errorf("rotate log %s: %w", file, err)
	}
	return true, nil
}

// RemoveLog removes a log file and its rotated part.
func RemoveLog(file string) error {
	var errs []error
	for _, f := range []string{file, rotated(file)} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// KeepLogsBounded trims every *.log file in dir to max bytes (TrimLog)
// every LogTrimEvery until ctx ends; wg counts it. A rotated part whose
// file is gone (the instance was removed) is removed too.
func KeepLogsBounded(ctx context.Context, wg *sync.WaitGroup, dir string, max int64, log *slog.Logger) {
	KeepFilesBounded(ctx, wg, filepath.Join(dir, "*.log"), max, log)
}

// KeepFilesBounded is KeepLogsBounded for the files that match a glob
// pattern, e.g. <instances>/*/console.log (each instance's own
// directory).
func KeepFilesBounded(ctx context.Context, wg *sync.WaitGroup, pattern string, max int64, log *slog.Logger) {
	if max <= 0 {
		max = DefaultLogMaxBytes
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(LogTrimEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			trimLogs(pattern, max, log)
		}
	}()
}

func trimLogs(pattern string, max int64, log *slog.Logger) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		log.Warn("find the log files", "pattern", pattern, "err", err)
		return
	}
	for _, f := range files {
		if _, err := TrimLog(f, max); err != nil {
			log.Warn("bound an instance's log", "err", err)
		}
	}
	parts, _ := filepath.Glob(pattern + ".1")
	for _, p := range parts {
		if _, err := os.Stat(strings.TrimSuffix(p, ".1")); errors.Is(err, os.ErrNotExist) {
			_ = os.Remove(p)
		}
	}
}
