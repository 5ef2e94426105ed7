package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

// Bad command lines fail before anything is built or fetched.
func TestRunRefusesBadArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown subcommand "frobnicate"`},
		{[]string{"build", "extra"}, `unexpected arguments ["extra"]`},
		{[]string{"-o"}, "flag needs an argument: -o"},
		{[]string{"bare", "-nope"}, "flag provided but not defined: -nope"},
	} {
		err := run(context.Background(), tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
	if err := run(context.Background(), []string{"-h"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("run(-h) = %v, want flag.ErrHelp", err)
	}
}
