package config

import (
	"fmt"
	"os"
	"reflect"
	"strings"
)

// readFiles fills, in the struct v and in the struct values of its maps,
// every key that has a non-empty <key>_file sibling with that file's
// content. prefix is v's key. It walks v as Fields does, so keys are named
// the same way.
func readFiles(v reflect.Value, prefix string) error {
	leaves := map[string]reflect.Value{}
	var keys []string
	walk(v, prefix, func(key string, fv reflect.Value, _ reflect.StructField) {
		leaves[key] = fv
		keys = append(keys, key)
	})
	for _, key := range keys {
		fv := leaves[key]
		switch {
		case fv.Kind() == reflect.Map && fv.Type().Elem().Kind() == reflect.Struct:
			for _, mk := range fv.MapKeys() {
				elem := reflect.New(fv.Type().Elem()).Elem()
				elem.Set(fv.MapIndex(mk))
				if err := readFiles(elem, fmt.Sprintf("%s.%v", key, mk.Interface())); err != nil {
					return err
				}
				fv.SetMapIndex(mk, elem)
			}
		case fv.Kind() == reflect.String && strings.HasSuffix(key, "_file") && fv.String() != "":
			target, ok := leaves[strings.TrimSuffix(key, "_file")]
			if !ok {
				continue // a file that is not a secret (tls.ca_file)
			}
			if err := fill(target, key, fv.String()); err != nil {
				return err
			}
		}
	}
	return nil
}

// fill sets target, the sibling of the key fileKey, from file.
func fill(target reflect.Value, fileKey, file string) error {
	valueKey := strings.TrimSuffix(fileKey, "_file")
	if !target.IsZero() {
		return Errorf(fileKey, "both %s and %s are set; give one", valueKey, fileKey)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return Errorf(fileKey, "%v", err)
	}
	text := strings.TrimRight(string(b), "\r\n")
	switch {
	case target.Kind() == reflect.String:
		if text == "" {
			return Errorf(fileKey, "%s is empty", file)
		}
		target.SetString(text)
	case target.Kind() == reflect.Slice && target.Type().Elem().Kind() == reflect.String:
		var vals []string
		for _, line := range strings.Split(text, "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				vals = append(vals, line)
			}
		}
		if len(vals) == 0 {
			return Errorf(fileKey, "%s holds no value (one per line; # starts a comment)", file)
		}
		target.Set(reflect.ValueOf(vals))
	default:
		return Errorf(fileKey, "%s is a %s; only string and list keys can come from a file", valueKey, target.Type())
	}
	return nil
}
