package lab

import "sync"

// runParallel calls do for every item concurrently, waits for all of them and
// returns their errors indexed like items. VM operations go through it because
// each can take seconds (QEMU start, stop) and they do not depend on each other.
func runParallel[T any](items []T, do func(T) error) []error {
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, x := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = do(x)
		}()
	}
	wg.Wait()
	return errs
}
