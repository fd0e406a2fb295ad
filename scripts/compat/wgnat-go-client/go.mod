module wgnat.invalid/wgnat-go-client

go 1.19
