package schedule

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// continuousRow is one line of testdata/continuous.golden.json, the
// regression golden of the fractional-time functions (rewritten by -update).
type continuousRow struct {
	Schedule   string  `json:"schedule"`
	T          float64 `json:"t"`
	K          float64 `json:"k"`
	AlphaBar   float64 `json:"alpha_bar"`
	LogSNR     jsonF   `json:"log_snr"`
	TauCont    float64 `json:"tau_continuous"`
	TauNearest float64 `json:"tau_nearest"`
	Power      float64 `json:"power_factor"`
}

// jsonF is a float64 that survives JSON as the string "-Inf" when it is
// -Inf (the log SNR at zero SNR).
type jsonF float64

func (f jsonF) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(f), 0) {
		return json.Marshal("-Inf")
	}
	return json.Marshal(float64(f))
}

func (f *jsonF) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*f = jsonF(math.Inf(-1))
		return nil
	}
	return json.Unmarshal(b, (*float64)(f))
}

const continuousGoldenPath = "testdata/continuous.golden.json"

func TestContinuousGolden(t *testing.T) {
	schedules := map[string]*Schedule{
		"scaled_linear":      ScaledLinear(1000, 0.00085, 0.012),
		"linear":             Linear(1000, 1e-4, 0.02),
		"squaredcos_cap_v2":  SquaredCosCapV2(1000),
		"scaled_linear_zsnr": ScaledLinear(1000, 0.00085, 0.012).RescaleZeroTerminalSNR(),
	}
	var got []continuousRow
	for _, name := range []string{"scaled_linear", "linear", "squaredcos_cap_v2", "scaled_linear_zsnr"} {
		s := schedules[name]
		for _, tt := range []float64{0, 0.5, 1, 20.25, 250, 499.5, 801, 900.125, 981, 998.5, 998.999, 999} {
			for _, k := range []float64{1, 2, 4, 9, 16} {
				got = append(got, continuousRow{
					Schedule: name, T: tt, K: k,
					AlphaBar:   s.AlphaBar(tt),
					LogSNR:     jsonF(s.LogSNR(tt)),
					TauCont:    s.MatchedTime(tt, k, Continuous),
					TauNearest: s.MatchedTime(tt, k, Nearest),
					Power:      s.PowerFactor(tt, k),
				})
			}
		}
	}
	if *update {
		data, err := json.MarshalIndent(got, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(continuousGoldenPath, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(continuousGoldenPath)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var want []continuousRow
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(1e-12, 1e-300),
		cmp.Comparer(func(a, b jsonF) bool { return a == b || math.Abs(float64(a-b)) <= 1e-12*math.Abs(float64(a)) })); diff != "" {
		t.Errorf("continuous-time values changed (-golden +got):\n%s", diff)
	}
}
