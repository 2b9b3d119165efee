// Package deploy describes, for the tests of the deployment files, what
// they share: the image deploy/docker/Dockerfile builds.
package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Image is what the final stage of a Dockerfile puts in the image.
type Image struct {
	// Copied are the destinations of its COPY instructions; a directory
	// ends in "/".
	Copied []string
	// User is the user its processes run as (USER), "" for root.
	User string
}

// ReadDockerfile reads the final stage of the Dockerfile at path. It knows
// the instructions deploy/docker/Dockerfile uses, one per line.
func ReadDockerfile(path string) (Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Image{}, fmt.Errorf("dockerfile: %w", err)
	}
	var img Image
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM": // a new stage: only the last one is the image
			img = Image{}
		case "COPY":
			var args []string
			for _, f := range fields[1:] {
				if !strings.HasPrefix(f, "--") {
					args = append(args, f)
				}
			}
			if len(args) < 2 {
				return Image{}, fmt.Errorf("dockerfile %s: COPY without source and destination: %s", path, sc.Text())
			}
			img.Copied = append(img.Copied, args[len(args)-1])
		case "USER":
			if len(fields) != 2 {
				return Image{}, fmt.Errorf("dockerfile %s: %s", path, sc.Text())
			}
			img.User = fields[1]
		}
	}
	if err := sc.Err(); err != nil {
		return Image{}, fmt.Errorf("dockerfile %s: %w", path, err)
	}
	return img, nil
}

// Holds reports whether file (an absolute path) was copied into the image,
// itself or under a copied directory.
func (img Image) Holds(file string) bool {
	for _, c := range img.Copied {
		if c == file || (strings.HasSuffix(c, "/") && strings.HasPrefix(file, c)) {
			return true
		}
	}
	return false
}
