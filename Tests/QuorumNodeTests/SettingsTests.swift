import QuorumCore
import QuorumTestSupport
import Testing
@testable import QuorumNode

/// Parses with no files unless given, a fixed host name and environment.
func parse(
    _ arguments: [String],
    environment: [String: String] = [:],
    hostname: String = "alpha",
    files: [String: String] = [:]
) throws(SettingsError) -> NodeSettings {
    let command = try NodeSettings.parse(arguments: arguments, environment: environment, hostname: hostname) { path in
        guard let text = files[path] else { throw TestFailure("No such file or directory") }
        return text
    }
    guard case .run(let settings) = command else { throw SettingsError("expected settings, got help") }
    return settings
}

/// The one-line message quorumd would print before exiting with status 2.
func failure(_ arguments: [String], files: [String: String] = [:]) -> String? {
    do {
        _ = try parse(arguments, files: files)
        return nil
    } catch {
        return "quorumd: \(error)"
    }
}

@Suite("quorumd settings")
struct SettingsTests {
    @Test("the original's example line works as written")
    func originalExample() throws {
        let settings = try parse(["0.0.0.0", "6170", "-d", "-m=i_am_master.py", "-s=i_am_slave.py", "-n=B", "-d"])
        #expect(settings.address == "0.0.0.0")
        #expect(settings.port == 6170)
        #expect(settings.debugLevel == 2)
        #expect(settings.debug)
        #expect(settings.masterHook == "i_am_master.py")
        #expect(settings.slaveHook == "i_am_slave.py")
        #expect(settings.name == "B")
        #expect(settings.controlSocket == "/run/quorum/B/control.sock")
        #expect(settings.stateDirectory == "/var/lib/quorum/B")
    }

    @Test("defaults: positionals, name from host and port, paths from the name")
    func defaults() throws {
        let settings = try parse([])
        #expect(settings.address == "0.0.0.0")
        #expect(settings.port == 8080)
        #expect(settings.broadcastAddress == "255.255.255.255")
        #expect(settings.broadcastPort == 5595)
        #expect(settings.name == "alpha-8080")
        #expect(settings.debugLevel == 0)
        #expect(settings.masterHook == nil && settings.slaveHook == nil)
        #expect(settings.metric == .age)
        #expect(settings.onQuorumLoss == .wait)
        #expect(settings.expectedNodes == nil)
        #expect(settings.tieBreaker == false)
        #expect(settings.cluster == "quorum")
        #expect(settings.keyFile == nil)
        #expect(settings.hookTimeout == .seconds(30))
        #expect(settings.controlSocket == "/run/quorum/alpha-8080/control.sock")
        #expect(settings.stateDirectory == "/var/lib/quorum/alpha-8080")
    }

    @Test("all four positionals and every long option, as `--x V` and `--x=V`")
    func everyOption() throws {
        let settings = try parse([
            "127.0.0.1", "0", "ff02::114", "6000", "--discovery-interface", "eth0",
            "--name", "node.1", "--debug", "--master-hook=/etc/quorum/m", "--slave-hook", "/etc/quorum/s",
            "--use_port_instead_of_life_time", "--on-quorum-loss=dispatch", "--expected-nodes", "3",
            "--tie-breaker", "--cluster=lab", "--key-file", "/etc/quorum/key", "--hook-timeout=2.5",
            "--control-socket", "/tmp/q.sock", "--state-dir=/tmp/state",
        ])
        #expect(settings.address == "127.0.0.1")
        #expect(settings.port == 0)
        #expect(settings.broadcastAddress == "ff02::114")
        #expect(settings.discoveryInterface == "eth0")
        #expect(settings.broadcastPort == 6000)
        #expect(settings.name == "node.1")
        #expect(settings.debugLevel == 1)
        #expect(settings.masterHook == "/etc/quorum/m")
        #expect(settings.slaveHook == "/etc/quorum/s")
        #expect(settings.metric == .port)
        #expect(settings.onQuorumLoss == .dispatch)
        #expect(settings.expectedNodes == 3)
        #expect(settings.tieBreaker)
        #expect(settings.cluster == "lab")
        #expect(settings.keyFile == "/etc/quorum/key")
        #expect(settings.hookTimeout == .milliseconds(2500))
        #expect(settings.controlSocket == "/tmp/q.sock")
        #expect(settings.stateDirectory == "/tmp/state")
        #expect(settings.coreConfiguration.metric == .port)
        #expect(settings.coreConfiguration.expectedNodes == 3)
    }

    @Test("the dashed spelling of the port metric flag works too; -dd counts twice")
    func aliases() throws {
        #expect(try parse(["--use-port-instead-of-life-time"]).metric == .port)
        #expect(try parse(["-dd"]).debugLevel == 2)
        #expect(try parse(["-n", "B", "-m", "x.py"]).masterHook == "x.py")
    }

    @Test("-h and --help give the usage text, not an error")
    func help() throws {
        for flag in ["-h", "--help"] {
            let command = try NodeSettings.parse(arguments: ["0.0.0.0", flag], environment: [:], hostname: "h") { _ in "" }
            guard case .help(let usage) = command else {
                Issue.record("\(flag) did not ask for help")
                continue
            }
            #expect(usage.contains("USAGE: quorumd"))
            #expect(usage.contains("--use_port_instead_of_life_time"))
            #expect(usage.contains("--hook-timeout"))
        }
    }

    @Test("under systemd the control socket and state directory come from the environment")
    func systemdDirectories() throws {
        let settings = try parse(["-n", "B"], environment: [
            "RUNTIME_DIRECTORY": "/run/quorum/B", "STATE_DIRECTORY": "/var/lib/quorum/B:/var/lib/other",
        ])
        #expect(settings.controlSocket == "/run/quorum/B/control.sock")
        #expect(settings.stateDirectory == "/var/lib/quorum/B")

        let flagsWin = try parse(["-n", "B", "--control-socket", "/tmp/c.sock", "--state-dir", "/tmp/s"],
                                 environment: ["RUNTIME_DIRECTORY": "/run/x", "STATE_DIRECTORY": "/var/x"])
        #expect(flagsWin.controlSocket == "/tmp/c.sock")
        #expect(flagsWin.stateDirectory == "/tmp/s")

        let empty = try parse(["-n", "B"], environment: ["RUNTIME_DIRECTORY": "", "STATE_DIRECTORY": ""])
        #expect(empty.controlSocket == "/run/quorum/B/control.sock")
        #expect(empty.stateDirectory == "/var/lib/quorum/B")
    }

    @Test("the default name uses the requested port and a cleaned, cut host name", arguments: [
        ("alpha", UInt16(8080), "alpha-8080"),
        ("host name+x", UInt16(1), "host-name-x-1"),
        ("", UInt16(0), "node-0"),
        ("böx", UInt16(5), "b-x-5"),
        (String(repeating: "h", count: 80), UInt16(65535), String(repeating: "h", count: 58) + "-65535"),
    ])
    func defaultName(hostname: String, port: UInt16, expected: String) {
        let name = NodeSettings.defaultName(hostname: hostname, port: port)
        #expect(name == expected)
        #expect(Names.isValid(name))
    }

    @Test("a config file supplies settings; flags win over it; later files win over earlier ones")
    func configFile() throws {
        let files = [
            "/etc/quorum/quorum.conf": """
                # cluster-wide
                cluster = lab
                on-quorum-loss = dispatch
                tie-breaker = true
                hook-timeout = 10
                name = fromcluster

                """,
            "/etc/quorum/B.conf": """
                name = B
                port = 6170
                address = 10.0.0.2
                broadcast-address = 10.0.0.255
                broadcast-port = 6000
                master-hook = /etc/quorum/master.sh
                slave-hook = "/etc/quorum/slave #2.sh"
                use_port_instead_of_life_time = yes
                expected-nodes = 3
                   # indented comment
                debug = 1
                """,
        ]
        let fromFiles = try parse(["--config", "/etc/quorum/quorum.conf", "--config=/etc/quorum/B.conf"], files: files)
        #expect(fromFiles.cluster == "lab")
        #expect(fromFiles.onQuorumLoss == .dispatch)
        #expect(fromFiles.tieBreaker)
        #expect(fromFiles.hookTimeout == .seconds(10))
        #expect(fromFiles.name == "B")
        #expect(fromFiles.port == 6170)
        #expect(fromFiles.address == "10.0.0.2")
        #expect(fromFiles.broadcastAddress == "10.0.0.255")
        #expect(fromFiles.broadcastPort == 6000)
        #expect(fromFiles.masterHook == "/etc/quorum/master.sh")
        #expect(fromFiles.slaveHook == "/etc/quorum/slave #2.sh")
        #expect(fromFiles.metric == .port)
        #expect(fromFiles.expectedNodes == 3)
        #expect(fromFiles.debugLevel == 1)
        #expect(fromFiles.configFiles == ["/etc/quorum/quorum.conf", "/etc/quorum/B.conf"])

        let flagsWin = try parse(["0.0.0.0", "7000", "--config", "/etc/quorum/B.conf", "-n=C", "--hook-timeout", "1", "-d", "-d"], files: files)
        #expect(flagsWin.name == "C")
        #expect(flagsWin.port == 7000)
        #expect(flagsWin.address == "0.0.0.0")
        #expect(flagsWin.hookTimeout == .seconds(1))
        #expect(flagsWin.debugLevel == 2)
        #expect(flagsWin.masterHook == "/etc/quorum/master.sh")
    }

    @Test("bad input ends with one line naming the flag, or file and line, and what to do", arguments: [
        (["--bogus"], "quorumd: Unknown option '--bogus' (see quorumd --help)"),
        (["-m"], "quorumd: Missing value for '-m <path>' (see quorumd --help)"),
        (["0.0.0.0", "70000"], "quorumd: PORT: '70000' is not a port number (0-65535; 0 takes any free port)"),
        (["0.0.0.0", "x"], "quorumd: PORT: 'x' is not a port number (0-65535; 0 takes any free port)"),
        (["0.0.0.0", "1", "255.255.255.255", "0"], "quorumd: BROADCAST_PORT: '0' is not a port number (1-65535)"),
        (["localhost"], "quorumd: ADDRESS: 'localhost' is not an IPv4 or IPv6 address (for example 0.0.0.0 or ::)"),
        (["0.0.0.0", "1", "10.0.0"], "quorumd: BROADCAST_ADDRESS: '10.0.0' is not an IPv4 or IPv6 address (for example 0.0.0.0 or ::)"),
        (["-n", "a b"], "quorumd: --name: 'a b' is not a valid name: use 1-64 bytes of letters, digits, '-', '_' and '.'"),
        (["-n", ""], "quorumd: --name: '' is not a valid name: use 1-64 bytes of letters, digits, '-', '_' and '.'"),
        (["--cluster", "a/b"], "quorumd: --cluster: 'a/b' is not a valid cluster name: use 1-64 bytes of letters, digits, '-', '_' and '.'"),
        (["--on-quorum-loss", "panic"], "quorumd: --on-quorum-loss: 'panic' is not a policy: use wait or dispatch"),
        (["--expected-nodes", "0"], "quorumd: --expected-nodes: '0' is not a node count: use a whole number of at least 1"),
        (["--hook-timeout", "0"], "quorumd: --hook-timeout: '0' is not a number of seconds above 0 (at most 86400)"),
        (["--hook-timeout=soon"], "quorumd: --hook-timeout: 'soon' is not a number of seconds above 0 (at most 86400)"),
        (["-m="], "quorumd: --master-hook: the path is empty"),
        (["--slave-hook", ""], "quorumd: --slave-hook: the path is empty"),
        (["--control-socket", "/" + String(repeating: "s", count: 107)], "quorumd: --control-socket: the socket path is longer than 107 bytes; choose a shorter one"),
        (["--config", "/missing.conf"], "quorumd: --config /missing.conf: cannot read the file (No such file or directory)"),
        (["--config", "/bad.conf"], "quorumd: /bad.conf:3: unknown key 'colour' (known keys: address, port, broadcast-address, broadcast-port, name, debug, log-level, master-hook, slave-hook, use-port-instead-of-life-time, on-quorum-loss, expected-nodes, tie-breaker, cluster, key-file, hook-timeout, control-socket, state-dir, peer, peer-resolve-interval, discovery-interface, metrics-listen, priority, preempt, preempt-delay, witness, check, check-interval, check-timeout, check-fall, check-rise)"),
        (["--config", "/value.conf"], "quorumd: /value.conf:2: port: 'eighty' is not a port number (0-65535; 0 takes any free port)"),
        (["--config", "/noequals.conf"], "quorumd: /noequals.conf:1: expected `key = value`, found 'tie-breaker'"),
        (["--config", "/nested.conf"], "quorumd: /nested.conf:1: unknown key 'config' (config files cannot include other files)"),
        (["--config", "/bool.conf"], "quorumd: /bool.conf:1: tie-breaker: 'maybe' is not true or false"),
    ])
    func errors(arguments: [String], message: String) {
        let files = [
            "/bad.conf": "# ok\nname = B\ncolour = blue\n",
            "/value.conf": "\nport = eighty\n",
            "/noequals.conf": "tie-breaker\n",
            "/nested.conf": "config = /etc/other.conf\n",
            "/bool.conf": "tie-breaker = maybe\n",
        ]
        let got = failure(arguments, files: files)
        #expect(got == message)
        #expect(got?.contains("\n") == false)
        #expect(SettingsError.exitStatus == 2)
    }

    @Test("a bad file value that a flag overrides is not an error: the flag wins")
    func flagOverridesBadFileValue() {
        #expect(failure(["-n", "B", "--config", "/c"], files: ["/c": "name = bad name\n"]) == nil)
    }
}

@Suite("quorumd settings: seeds (--peer) and discovery")
struct SeedSettingsTests {
    @Test("every accepted form of HOST[:PORT]: names, IPv4, bare and bracketed IPv6, zones; PORT defaults to the node's own")
    func acceptedForms() throws {
        let settings = try parse(["0.0.0.0", "6170", "-n", "B",
                                  "--peer", "db1.example", "--peer", "db2.example:7000", "--peer", "192.0.2.1",
                                  "--peer", "192.0.2.2:6171", "--peer", "2001:db8::1", "--peer", "[2001:db8::2]",
                                  "--peer", "[2001:db8::3]:6172", "--peer", "[fe80::1%lo]:6173", "--peer", "localhost"])
        let seeds = settings.seeds
        #expect(seeds.map(\.host) == ["db1.example", "db2.example", "192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2", "2001:db8::3", "fe80::1%lo", "localhost"])
        #expect(seeds.map(\.port) == [nil, 7000, nil, 6171, nil, nil, 6172, 6173, nil])
        #expect(seeds.map(\.isLiteral) == [false, false, true, true, true, true, true, true, false])
        #expect(settings.broadcastDiscovery)
    }

    @Test("config files: peer lines add up, commas separate entries; --peer on the command line replaces them")
    func fromFiles() throws {
        let file = "peer = a.example:6170, b.example:6170\npeer = [2001:db8::9]\nbroadcast-address = none\n"
        let fromFile = try parse(["--config", "/etc/q.conf", "-n", "B"], files: ["/etc/q.conf": file])
        #expect(fromFile.seeds.map(\.text) == ["a.example:6170", "b.example:6170", "[2001:db8::9]"])
        #expect(!fromFile.broadcastDiscovery)
        #expect(fromFile.description.contains("broadcast-address = none"))
        let overridden = try parse(["--config", "/etc/q.conf", "-n", "B", "--peer", "c.example", "--broadcast-address", "127.255.255.255"], files: ["/etc/q.conf": file])
        #expect(overridden.seeds.map(\.text) == ["c.example"])
        #expect(overridden.broadcastDiscovery && overridden.broadcastAddress == "127.255.255.255")
        #expect(try parse(["0.0.0.0", "6170", "none", "-n", "B"]).broadcastDiscovery == false, "BROADCAST_ADDRESS none as a positional too")
    }

    @Test("bad seeds end with one line naming the entry", arguments: [
        ("host:0", "quorumd: --peer: peer 'host:0': '0' is not a peer port (1-65535)"),
        ("host:65536", "quorumd: --peer: peer 'host:65536': '65536' is not a peer port (1-65535)"),
        ("[::1", "quorumd: --peer: peer '[::1': '[' without ']'"),
        ("[::1]x", "quorumd: --peer: peer '[::1]x': expected ':PORT' after ']'"),
        ("fe80::1", "quorumd: --peer: peer 'fe80::1': fe80::1 is link-local: name the interface, e.g. [fe80::1%eth0]:6170"),
        ("[fe80::1]:6170", "quorumd: --peer: peer '[fe80::1]:6170': fe80::1 is link-local: name the interface, e.g. [fe80::1%eth0]:6170"),
        ("2001:db8::zz", "quorumd: --peer: peer '2001:db8::zz': '2001:db8::zz' is not an IPv6 address"),
        (":6170", "quorumd: --peer: peer ':6170': the host is empty"),
        ("", "quorumd: --peer: peer '': the entry is empty"),
        ("bad_name!", "quorumd: --peer: peer 'bad_name!': 'bad_name!' is not a host name or an IP address"),
        ("10.0.0:6170", "quorumd: --peer: peer '10.0.0:6170': '10.0.0' is not an IPv4 address (four numbers 0-255, as 192.0.2.1)"),
        (String(repeating: "a", count: 60) + "." + String(repeating: "b", count: 240), "quorumd: --peer: peer '\(String(repeating: "a", count: 60) + "." + String(repeating: "b", count: 240))': the host name is 301 bytes long (at most 253)"),
    ])
    func badSeeds(_ entry: String, _ message: String) {
        #expect(failure(["-n", "B", "--peer", "good.example", "--peer", entry]) == message)
    }

    @Test("IPv6 discovery goes to a multicast group; a link-local group needs the interface")
    func ipv6Discovery() throws {
        #expect(failure(["::", "6170", "fd00::1", "-n", "B"])
                == "quorumd: BROADCAST_ADDRESS: 'fd00::1' is not an IPv6 multicast group: IPv6 has no broadcast; use a group such as ff02::114 with --discovery-interface")
        #expect(failure(["::", "6170", "ff02::114", "-n", "B"])
                == "quorumd: BROADCAST_ADDRESS: the link-local group ff02::114 needs --discovery-interface (the link to send on, such as eth0)")
        #expect(failure(["-n", "B", "--discovery-interface", "eth0/1"]) == "quorumd: --discovery-interface: 'eth0/1' is not a network interface name (such as eth0)")
        let settings = try parse(["fd00::1", "6170", "--broadcast-address", "ff02::114", "--discovery-interface", "eth0", "-n", "B"])
        #expect(settings.address == "fd00::1" && settings.broadcastAddress == "ff02::114" && settings.discoveryInterface == "eth0")
    }

    @Test("a bad seed in a file names the file and line")
    func badSeedInFile() {
        #expect(failure(["--config", "/q.conf", "-n", "B"], files: ["/q.conf": "# seeds\npeer = a.example, [::1\n"])
                == "quorumd: /q.conf:2: peer: peer '[::1': '[' without ']'")
    }
}
