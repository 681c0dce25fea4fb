package v1alpha1

import (
	"encoding/json"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

func init() {
	// equality.Semantic compares API objects, as the operator does before it
	// writes a status. It would panic on time.Time's unexported fields, as it
	// would on metav1.Time's but for the function apimachinery registers.
	utilruntime.Must(equality.Semantic.AddFunc(func(a, b PreciseTime) bool { return a.Equal(b.Time) }))
}

// preciseTimeLayout writes microseconds always, as metav1.MicroTime does.
const preciseTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// PreciseTime is a point in time that the API keeps to the microsecond, as
// an RFC 3339 string. metav1.Time keeps whole seconds only. metav1.MicroTime
// keeps microseconds, but its decoder refuses a value without exactly six
// digits of fraction, such as the whole seconds that objects written before
// this type hold; PreciseTime reads RFC 3339 with any fraction or none.
//
// It is normalised to UTC, rounded up to the microsecond, whenever it is made
// or read, so that what the operator writes and what it reads back compare
// equal (with reflect.DeepEqual too), and a deadline it carries is never
// earlier than the one computed.
//
// +kubebuilder:validation:Type=string
// +kubebuilder:validation:Format=date-time
// +kubebuilder:object:generate=false
type PreciseTime struct {
	time.Time `json:"-"`
}

// NewPreciseTime is t in UTC, rounded up to the microsecond, without its
// monotonic clock reading.
func NewPreciseTime(t time.Time) PreciseTime {
	rounded := t.Truncate(time.Microsecond)
	if rounded.Before(t) {
		rounded = rounded.Add(time.Microsecond)
	}
	return PreciseTime{Time: rounded.UTC()}
}

// DeepCopyInto copies the time, which holds no references of its own.
func (t *PreciseTime) DeepCopyInto(out *PreciseTime) { *out = *t }

// DeepCopy copies the time.
func (t *PreciseTime) DeepCopy() *PreciseTime {
	if t == nil {
		return nil
	}
	out := new(PreciseTime)
	t.DeepCopyInto(out)
	return out
}

// MarshalJSON writes RFC 3339 with six digits of fraction, rounded up; null for the zero time.
func (t PreciseTime) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(NewPreciseTime(t.Time).Format(preciseTimeLayout))
}

// UnmarshalJSON reads RFC 3339 with any fraction of a second or none, and null.
func (t *PreciseTime) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*t = PreciseTime{}
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("reading a time: %w", err)
	}
	parsed, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("reading a time: %w", err)
	}
	*t = NewPreciseTime(parsed)
	return nil
}
