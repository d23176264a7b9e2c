module github.com/ambient-mesh/ambient-mesh/tools/hbone-peer

go 1.26.0

require golang.org/x/net v0.62.0

require golang.org/x/text v0.43.0 // indirect
