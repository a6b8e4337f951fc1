package config

import "fmt"

// provium validates the [provium] table into cfg.
func (l *loader) provium(cfg *Config, v any) error {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("`provium` %s, got `%s`", probTable, render(v))
	}
	t := newTable(m, "[provium]")
	var err error
	if cfg.Roots, err = l.roots(t); err != nil {
		return err
	}
	if cfg.CacheDirKey, err = t.path("cache_dir", l.dir, l.env); err != nil {
		return err
	}
	if cfg.CacheMaxSize, err = t.size("cache_max_size", DefaultCacheMaxSize); err != nil {
		return err
	}
	if cfg.AccelKey, err = t.enum("accel", probAccel, "", accelValues...); err != nil {
		return err
	}
	if cfg.ScratchDirKey, err = t.path("scratch_dir", l.dir, l.env); err != nil {
		return err
	}
	if v, ok := t.get("psi_threshold"); ok {
		f, isNum := number(v)
		if !isNum || f < 0 || f > 100 {
			return t.problem("psi_threshold", probPSI, v)
		}
		cfg.PSIThreshold = f
	}
	l.warnUnknown(l.path, "provium.", t)
	return nil
}

// roots reads `roots`, an array of directories, resolved against the config
// file's directory.
func (l *loader) roots(t *table) ([]string, error) {
	v, ok := t.get("roots")
	if !ok {
		return nil, nil
	}
	arr, isArr := v.([]any)
	if !isArr {
		return nil, t.problem("roots", probRoots, v)
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, isStr := e.(string)
		if !isStr || s == "" {
			return nil, t.problem("roots", probRoots, v)
		}
		r, err := resolvePath(s, l.dir, l.env)
		if err != nil {
			return nil, t.problem("roots", probHome, s)
		}
		out = append(out, r)
	}
	return out, nil
}
