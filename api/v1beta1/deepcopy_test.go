package v1beta1_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	metafuzzer "k8s.io/apimachinery/pkg/apis/meta/fuzzer"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/randfill"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// TestDeepCopy_RoundTrips fills every kind with random values, checks that
// DeepCopy is equal to the original and shares no memory with it, and that
// a JSON round trip preserves the object.
func TestDeepCopy_RoundTrips(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := flaggerv1beta1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	// No nils and at least one element per list and map, so every nested
	// type is reached; the metadata fillers keep ObjectMeta valid.
	filler := randfill.NewWithSeed(1).NilChance(0).NumElements(1, 2).MaxDepth(30).
		Funcs(metafuzzer.Funcs(serializer.NewCodecFactory(scheme))...)
	kinds := []struct {
		name string
		new  func() runtime.Object
	}{
		{"Canary", func() runtime.Object { return &flaggerv1beta1.Canary{} }},
		{"CanaryList", func() runtime.Object { return &flaggerv1beta1.CanaryList{} }},
		{"MetricTemplate", func() runtime.Object { return &flaggerv1beta1.MetricTemplate{} }},
		{"MetricTemplateList", func() runtime.Object { return &flaggerv1beta1.MetricTemplateList{} }},
		{"AlertProvider", func() runtime.Object { return &flaggerv1beta1.AlertProvider{} }},
		{"AlertProviderList", func() runtime.Object { return &flaggerv1beta1.AlertProviderList{} }},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			for i := 0; i < 50; i++ {
				orig := k.new()
				filler.Fill(orig)
				copied := orig.DeepCopyObject()
				if !equality.Semantic.DeepEqual(orig, copied) {
					t.Fatalf("DeepCopy differs from the original:\n%#v\n%#v", orig, copied)
				}
				// Changing every value of the copy in place must leave the
				// original alone.
				snapshot, err := json.Marshal(orig)
				if err != nil {
					t.Fatal(err)
				}
				mutate(reflect.ValueOf(copied))
				after, err := json.Marshal(orig)
				if err != nil {
					t.Fatal(err)
				}
				if string(snapshot) != string(after) {
					t.Fatal("changing the copy changed the original: DeepCopy shares memory")
				}
				decoded := k.new()
				if err := json.Unmarshal(snapshot, decoded); err != nil {
					t.Fatal(err)
				}
				// Semantic equality treats nil and empty lists and maps alike,
				// as JSON does.
				if !equality.Semantic.DeepEqual(decoded, orig) {
					t.Fatalf("JSON round trip changed the object:\n%s", snapshot)
				}
			}
		})
	}
}

// mutate changes every exported leaf value reachable from v in place:
// through pointers, into slice elements and map values. If a DeepCopy shares
// a pointer, a backing array or a map with its original, the original changes
// too.
func mutate(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			mutate(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				mutate(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			mutate(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			mutate(e)
			v.SetMapIndex(k, e)
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(v.String() + "~")
		}
	case reflect.Bool:
		if v.CanSet() {
			v.SetBool(!v.Bool())
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.CanSet() {
			v.SetInt(v.Int() + 1)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.CanSet() {
			v.SetUint(v.Uint() + 1)
		}
	case reflect.Float32, reflect.Float64:
		if v.CanSet() {
			v.SetFloat(v.Float() + 1)
		}
	}
}
