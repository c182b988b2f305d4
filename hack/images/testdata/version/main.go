// Command version prints Sluice's version line; the image tests build it the
// way make images builds the real programs.
package main

import (
	"fmt"

	"github.com/sluicedev/sluice/internal/version"
)

func main() { fmt.Println(version.String()) }
