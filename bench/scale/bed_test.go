package main

import "testing"

func TestBedResult_ServicesFloor(t *testing.T) {
	tests := []struct {
		name string
		bed  bedResult
		n    int
		want float64
	}{
		{"scaled from the bed's rate", bedResult{Services: 300, ServiceSeconds: 7.5}, 3000, 75},
		{"no Services measured", bedResult{}, 3000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.bed.servicesFloor(tt.n); got != tt.want {
				t.Errorf("servicesFloor(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}
