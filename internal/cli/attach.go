package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"

	"github.com/provium/provium/internal/runner"
)

// replAttach is `provium repl --attach SOCK [--name VM]`: the prompt runs
// in the --keep-failed process that keeps the VM, so `vm` there is the
// kept VM with the full API.
func (s *session) replAttach(sock, name string) error {
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return fmt.Errorf("repl --attach: cannot reach `%s` (is the `provium --keep-failed` run still waiting?): %v", sock, err)
	}
	defer conn.Close()
	enc := json.NewEncoder(conn)
	dec := json.NewDecoder(bufio.NewReader(conn))
	if err := enc.Encode(attachMsg{Name: name}); err != nil {
		return fmt.Errorf("repl --attach: %v", err)
	}
	var hello attachMsg
	if err := dec.Decode(&hello); err != nil {
		return fmt.Errorf("repl --attach: %v", err)
	}
	if hello.Error != "" {
		return fmt.Errorf("repl --attach: %s", hello.Error)
	}
	fmt.Fprintln(s.env.Stdout, hello.Banner)

	lines, closeInput := s.replInput()
	defer closeInput()
	return s.promptLoop(lines, func(src string) ([]string, bool, error) {
		if err := enc.Encode(attachMsg{Src: &src}); err != nil {
			return nil, false, fmt.Errorf("repl --attach: the keeping process went away: %v", err)
		}
		var resp attachMsg
		if err := dec.Decode(&resp); err != nil {
			return nil, false, fmt.Errorf("repl --attach: the keeping process went away: %v", err)
		}
		switch {
		case resp.Incomplete:
			return nil, false, runner.ErrIncomplete
		case resp.Error != "":
			return nil, resp.Bye, &evalError{resp.Error}
		}
		return resp.Results, resp.Bye, nil
	})
}
