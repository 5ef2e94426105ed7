package harness

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestSession(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s := NewSession(context.Background(), "demo", &out)
	var order []int
	s.Cleanup(func() { order = append(order, 1) })
	s.Cleanup(func() {
		if s.Context().Err() == nil {
			t.Error("the context is still live during cleanups")
		}
		order = append(order, 2)
	})
	dir := s.TempDir()
	if s.Failed() {
		t.Error("a new session has failed")
	}
	s.Errorf("something %s", "broke")
	if !s.Failed() || !strings.Contains(out.String(), "something broke\n") {
		t.Errorf("after Errorf: failed %v, output %q", s.Failed(), out.String())
	}
	s.Close()
	s.Close()
	if !slices.Equal(order, []int{2, 1}) {
		t.Errorf("cleanups ran in order %v, want newest first, once", order)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("TempDir %s survived Close", dir)
	}
}

// syncBuffer is a bytes.Buffer for one writer goroutine and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
