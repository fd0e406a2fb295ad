// A stand-in for the wg-nat Go client's registry call: POST /keepalive?pubkey=K and decode the answer with Go's
// encoding/json into the same types wg-nat uses (wgtypes.PeerConfig, copied here with the standard library only,
// since wgctrl cannot be fetched on these machines). Prints the peers as wg-nat would configure them.
//
//	go run . http://100.64.0.1:51820 <own public key>
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// Key is wgtypes.Key: [32]byte, which encoding/json writes and reads as an array of numbers.
type Key [32]byte

// PeerConfig mirrors golang.zx2c4.com/wireguard/wgctrl/wgtypes.PeerConfig field for field.
type PeerConfig struct {
	PublicKey                   Key
	Remove                      bool
	UpdateOnly                  bool
	PresharedKey                *Key
	Endpoint                    *net.UDPAddr
	PersistentKeepaliveInterval *time.Duration
	ReplaceAllowedIPs           bool
	AllowedIPs                  []net.IPNet
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: wgnat-go-client <registry url> <own public key>")
		os.Exit(64)
	}
	client := http.Client{Timeout: 5 * time.Second}
	res, err := client.Post(os.Args[1]+"/keepalive?pubkey="+url.QueryEscape(os.Args[2]), "application/json", bytes.NewReader(nil))
	if err != nil {
		fmt.Fprintln(os.Stderr, "request:", err)
		os.Exit(1)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		fmt.Fprintf(os.Stderr, "status %d: %s\n", res.StatusCode, body)
		os.Exit(1)
	}
	var peers []PeerConfig
	if err := json.Unmarshal(body, &peers); err != nil {
		fmt.Fprintln(os.Stderr, "decode:", err)
		os.Exit(1)
	}
	for _, p := range peers {
		psk := "unchanged"
		if p.PresharedKey != nil {
			psk = "SET (leaked)"
		}
		ka := "unchanged"
		if p.PersistentKeepaliveInterval != nil {
			ka = p.PersistentKeepaliveInterval.String()
		}
		ips := ""
		for _, n := range p.AllowedIPs {
			ips += n.String() + " "
		}
		fmt.Printf("peer %s endpoint %s keepalive %s psk %s replace %v allowed-ips %s\n",
			base64.StdEncoding.EncodeToString(p.PublicKey[:]), p.Endpoint, ka, psk, p.ReplaceAllowedIPs, ips)
	}
}
