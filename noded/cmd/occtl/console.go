package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/onecloud-edu/onecloud/internal/pinhash"
	"github.com/onecloud-edu/onecloud/noded/api"
)

// consoleCommand runs `occtl console show|set-pin|set-lang`: the settings
// of the node console on every box. The PIN is hashed here, on the
// technician's machine; the cluster and the boxes only ever see its hash.
func consoleCommand(ctx context.Context, rest []string, o *options, out io.Writer, e env, sub func(string) *flag.FlagSet) error {
	if len(rest) == 0 {
		return usagef("console takes show, set-pin or set-lang zh|en")
	}
	switch rest[0] {
	case "show":
		if _, err := parse(sub("console show"), rest[1:], 0, "no arguments"); err != nil {
			return err
		}
		return withClient(ctx, o, e, func(ctx context.Context, c *api.Client) error {
			cs, err := c.Console(ctx)
			if err != nil {
				return err
			}
			return printConsole(out, o.json, cs)
		})
	case "set-pin":
		fs := sub("console set-pin")
		fromStdin := fs.Bool("pin-stdin", false, "read the PIN from the first line of stdin (for scripts) instead of asking twice")
		if _, err := parse(fs, rest[1:], 0, "no arguments: the PIN is asked for, or read with -pin-stdin"); err != nil {
			return err
		}
		pin, err := readPIN(e, *fromStdin)
		if err != nil {
			return err
		}
		hash, err := pinhash.Hash(pin)
		if err != nil {
			return usagef("%v", err)
		}
		return withClient(ctx, o, e, func(ctx context.Context, c *api.Client) error {
			cs, err := c.SetConsole(ctx, api.ConsoleSettings{PINHash: hash})
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(out, cs)
			}
			fmt.Fprintln(out, "console PIN set: boxes use it from their next enrolment (at their next boot)")
			return nil
		})
	case "set-lang":
		pos, err := parse(sub("console set-lang"), rest[1:], 1, "one language: set-lang zh or set-lang en")
		if err != nil {
			return err
		}
		if pos[0] != "zh" && pos[0] != "en" {
			return usagef("console set-lang %s: want zh or en", pos[0])
		}
		return withClient(ctx, o, e, func(ctx context.Context, c *api.Client) error {
			cs, err := c.SetConsole(ctx, api.ConsoleSettings{Lang: pos[0]})
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(out, cs)
			}
			fmt.Fprintf(out, "console language set to %s: boxes use it from their next enrolment\n", cs.Lang)
			return nil
		})
	}
	return usagef("console %s: use show, set-pin or set-lang", rest[0])
}

// readPIN reads the PIN: one line of stdin with -pin-stdin, else asked
// twice on the terminal without echo.
func readPIN(e env, fromStdin bool) (string, error) {
	stdin := e.stdin
	if stdin == nil {
		stdin = os.Stdin
	}
	if fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the PIN from stdin: %w", err)
		}
		return strings.TrimSpace(line), nil
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usagef("console set-pin asks for the PIN on a terminal; in a script, give it on stdin with -pin-stdin")
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(os.Stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(os.Stderr)
		return strings.TrimSpace(string(b)), err
	}
	pin, err := ask("new console PIN (4 to 8 digits): ")
	if err != nil {
		return "", err
	}
	again, err := ask("the same PIN again: ")
	if err != nil {
		return "", err
	}
	if pin != again {
		return "", usagef("the two PINs differ: nothing was changed")
	}
	return pin, nil
}

func printConsole(out io.Writer, asJSON bool, cs api.ConsoleSettings) error {
	if asJSON {
		return printJSON(out, cs)
	}
	pin := "not set (the console's admin menu stays closed)"
	if cs.PINHash != "" {
		pin = "set"
	}
	lang := cs.Lang
	if lang == "" {
		lang = "each box's default (onecloud.lang, else zh)"
	}
	fmt.Fprintf(out, "PIN       %s\nlanguage  %s\n", pin, lang)
	if cs.SetBy != "" {
		fmt.Fprintf(out, "changed   %s by %s\n", cs.SetAt.Format("2006-01-02 15:04"), cs.SetBy)
	}
	return nil
}
