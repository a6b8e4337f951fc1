package runner

import "github.com/provium/provium/internal/lua"

func openJSON(L *lua.Thread) error { return nil }
