#ifndef RC_AGENT_CEPOLL_SHIM_H
#define RC_AGENT_CEPOLL_SHIM_H
// epoll(7), eventfd(2), accept4(2) and pidfd_open(2) for the agent's front door
// (Sources/RCAgentDaemon/Server/FrontDoor.swift, PeerProcesses.swift): Swift's Glibc module does
// not include these headers.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>

// Linux 6.5's getsockopt for a pidfd of a Unix socket's peer; newer than Debian 12's headers.
// 77 is asm-generic's value (x86_64 and arm64 use it).
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

// Declared by <sys/socket.h> only under _GNU_SOURCE, which Swift's Glibc module is built without
// (including that header here again hides its names from the Glibc module's users).
struct sockaddr;
extern int accept4(int fd, struct sockaddr *address, unsigned int *length, int flags);
#endif
