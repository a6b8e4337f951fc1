package main

import "testing"

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	if got := median(xs); got != 3 {
		t.Errorf("median odd = %v", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median even = %v", got)
	}
	var hundred []float64
	for i := 100; i >= 1; i-- {
		hundred = append(hundred, float64(i))
	}
	if got := percentile(hundred, 99); got != 99 {
		t.Errorf("p99 of 1..100 = %v", got)
	}
	if got := percentile(hundred, 100); got != 100 {
		t.Errorf("p100 of 1..100 = %v", got)
	}
	if got := percentile([]float64{7}, 99); got != 7 {
		t.Errorf("p99 of one = %v", got)
	}
	if xs[0] != 5 {
		t.Error("percentile sorted its input in place")
	}
}

func TestWithinBudget(t *testing.T) {
	if got := withinBudget([]float64{10, 20, 30, 40}, 30); got != 0.75 {
		t.Errorf("share within 30 of 10,20,30,40 = %v, want 0.75", got)
	}
	if got := withinBudget(nil, 30); got != 0 {
		t.Errorf("share of no samples = %v", got)
	}
}
