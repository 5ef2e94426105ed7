package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/onecloud-edu/onecloud/qemu-tests/harness"
)

// clientCommand is the hidden first argument that makes bootbench a load client. The parent runs it
// inside the client namespace (nsenter, then exec of bootbench itself), so every socket the clients open
// lives on the lab network without switching threads between namespaces, which would cost time inside
// the measurement. The job comes as JSON on stdin; the result goes as JSON to stdout; progress to stderr.
const clientCommand = "__client"

// clientJob is one measurement run by the client process; exactly one of its parts is set.
type clientJob struct {
	HTTP  *httpJob  `json:"http,omitempty"`
	TFTP  *tftpJob  `json:"tftp,omitempty"`
	Storm *stormJob `json:"storm,omitempty"`
}

// clientResult is what the client process answers.
type clientResult struct {
	HTTP  *httpResult  `json:"http,omitempty"`
	TFTP  *tftpResult  `json:"tftp,omitempty"`
	Storm *stormResult `json:"storm,omitempty"`
	Error string       `json:"error,omitempty"`
}

// runClient runs one job in the client namespace and returns its result.
func runClient(ctx context.Context, cli *harness.Lab, exe string, job clientJob, timeout time.Duration, stderr io.Writer) (clientResult, error) {
	in, err := json.Marshal(job)
	if err != nil {
		return clientResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := cli.Command(ctx, exe, clientCommand)
	// Its own group: a Ctrl-C reaches bootbench only, which ends the job through ctx.
	cmd.SysProcAttr.Setpgid = true
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, stderr
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	var res clientResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		if runErr != nil {
			return res, fmt.Errorf("load client: %w", runErr)
		}
		return res, fmt.Errorf("load client: unreadable result %q: %w", lastLines(out.String(), 3), err)
	}
	if res.Error != "" {
		return res, fmt.Errorf("load client: %s", res.Error)
	}
	if runErr != nil {
		return res, fmt.Errorf("load client: %w", runErr)
	}
	return res, nil
}

// clientMain is the client process: it runs the job from stdin and writes the result to stdout.
func clientMain(stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var job clientJob
	var res clientResult
	if err := json.NewDecoder(stdin).Decode(&job); err != nil {
		res.Error = fmt.Sprintf("read the job: %v", err)
	} else {
		var err error
		switch {
		case job.HTTP != nil:
			var r httpResult
			r, err = runHTTP(ctx, *job.HTTP)
			res.HTTP = &r
		case job.TFTP != nil:
			var r tftpResult
			r, err = runTFTP(ctx, *job.TFTP)
			res.TFTP = &r
		case job.Storm != nil:
			var r stormResult
			r, err = runStorm(ctx, *job.Storm, stderr)
			res.Storm = &r
		default:
			err = errors.New("empty job")
		}
		if err != nil {
			res.Error = err.Error()
		}
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintf(stderr, "bootbench client: write the result: %v\n", err)
		return 1
	}
	if res.Error != "" {
		return 1
	}
	return 0
}
