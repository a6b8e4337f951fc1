package lab

import "context"

var bg = context.Background()
