#ifndef RC_AGENT_CEPOLL_SHIM_H
#define RC_AGENT_CEPOLL_SHIM_H
// epoll(7), eventfd(2) and accept4(2) for the agent's front door (Sources/RCAgentDaemon/Server/FrontDoor.swift):
// Swift's Glibc module does not include these headers.
#include <sys/epoll.h>
#include <sys/eventfd.h>

// Declared by <sys/socket.h> only under _GNU_SOURCE, which Swift's Glibc module is built without
// (including that header here again hides its names from the Glibc module's users).
struct sockaddr;
extern int accept4(int fd, struct sockaddr *address, unsigned int *length, int flags);
#endif
