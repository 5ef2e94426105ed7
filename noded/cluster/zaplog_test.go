package cluster

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestZapToSlog(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Level
		log   func(*zap.Logger)
		want  string // "" means nothing may be written
	}{
		{"warn with fields", slog.LevelInfo, func(l *zap.Logger) {
			l.With(zap.String("member", "srv1")).Warn("slow fdatasync", zap.Int("took-ms", 1200))
		}, `level=WARN msg="slow fdatasync" member=srv1 took-ms=1200`},
		{"error", slog.LevelInfo, func(l *zap.Logger) { l.Error("boom") }, `level=ERROR msg=boom`},
		{"etcd info is debug", slog.LevelDebug, func(l *zap.Logger) { l.Info("raft step") }, `level=DEBUG msg="raft step"`},
		{"etcd info hidden at info", slog.LevelInfo, func(l *zap.Logger) { l.Info("raft step") }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.level}))
			tt.log(zapToSlog(log))
			got := buf.String()
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Fatalf("logged %q, want it to contain %q", got, tt.want)
			}
		})
	}
}
