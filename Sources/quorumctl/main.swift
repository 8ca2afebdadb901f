// quorumctl: ask a running quorum node over its control socket.
// Exit status: 0 answered; 2 `status` answered but the node is not quorate; 1 the node could
// not be reached or refused; 64 wrong usage (ArgumentParser's validation exit code, EX_USAGE).
Quorumctl.main()
