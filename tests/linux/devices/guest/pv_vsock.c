// pv-vsock: the guest's end of the Linux-guest vsock tests, a static
// program for a busybox initramfs. It speaks AF_VSOCK through the guest
// kernel's virtio-vsock driver, which is what the tests exercise; the
// program itself only moves bytes and reports counts.
//
//   pv-vsock connect PORT      connect to the host (CID 2) on PORT
//   pv-vsock listen PORT       accept one connection on PORT
//     both: stdin goes to the socket (then a half close), the socket goes
//     to stdout, until both directions ended
//   pv-vsock echo PORT COUNT   accept COUNT connections on PORT, all served
//                              at once, each echoing until the peer's EOF
//   pv-vsock stall PORT BYTES  accept one connection, read exactly BYTES,
//                              then read nothing more until stdin ends
//
// Each finished stream reports "pv-vsock: MODE PORT in=N out=M seconds=S"
// on stderr (S from the connection's start to its end); the exit status is
// 0 only when every stream ended cleanly.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

struct counts {
    unsigned long long in;   // bytes from the socket
    unsigned long long out;  // bytes to the socket
    struct timespec start;
};

static double seconds_since(const struct timespec* start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void report(const char* mode, unsigned port, const struct counts* counts) {
    fprintf(stderr, "pv-vsock: %s %u in=%llu out=%llu seconds=%.3f\n", mode, port, counts->in,
            counts->out, seconds_since(&counts->start));
}

static int fail(const char* what) {
    fprintf(stderr, "pv-vsock: %s: %s\n", what, strerror(errno));
    return 1;
}

static int parse_number(const char* text, unsigned long long* value) {
    char* end = NULL;
    errno = 0;
    *value = strtoull(text, &end, 10);
    return errno == 0 && end != text && *end == '\0';
}

static int write_all(int fd, const char* data, size_t length) {
    while (length > 0) {
        ssize_t count = write(fd, data, length);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            return -1;
        data += count;
        length -= (size_t)count;
    }
    return 0;
}

static int vsock_listener(unsigned port, int backlog) {
    int listener = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0)
        return -1;
    struct sockaddr_vm address = {
        .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    if (bind(listener, (struct sockaddr*)&address, sizeof(address)) != 0 ||
        listen(listener, backlog) != 0) {
        close(listener);
        return -1;
    }
    return listener;
}

static int vsock_connect(unsigned port) {
    int stream = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (stream < 0)
        return -1;
    struct sockaddr_vm address = {
        .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port};
    if (connect(stream, (struct sockaddr*)&address, sizeof(address)) != 0) {
        close(stream);
        return -1;
    }
    return stream;
}

// stdin → STREAM and STREAM → stdout at once. The socket is non-blocking
// and stdin is read only once the last chunk is out, so a peer that echoes
// (and waits for us to read) never deadlocks with us.
static int pipe_stream(int stream, struct counts* counts) {
    static char to_socket[CHUNK];
    static char from_socket[CHUNK];
    size_t pending = 0, offset = 0;
    int stdin_open = 1, socket_open = 1;
    if (fcntl(stream, F_SETFL, fcntl(stream, F_GETFL) | O_NONBLOCK) != 0)
        return fail("fcntl");
    while (socket_open || stdin_open || pending > 0) {
        struct pollfd fds[2] = {{stream, 0, 0}, {STDIN_FILENO, 0, 0}};
        if (socket_open)
            fds[0].events |= POLLIN;
        if (pending > 0)
            fds[0].events |= POLLOUT;
        if (stdin_open && pending == 0)
            fds[1].events = POLLIN;
        // A hung-up socket would wake poll at once, again and again.
        if (!socket_open && pending == 0)
            fds[0].fd = -1;
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return fail("poll");
        }
        if (fds[1].revents) {
            ssize_t count = read(STDIN_FILENO, to_socket, sizeof(to_socket));
            if (count < 0)
                return fail("read stdin");
            if (count == 0) {
                stdin_open = 0;
                if (shutdown(stream, SHUT_WR) != 0)
                    return fail("shutdown");
            } else {
                pending = (size_t)count;
                offset = 0;
            }
        }
        if (pending > 0 && (fds[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t count = write(stream, to_socket + offset, pending);
            if (count < 0 && errno != EAGAIN)
                return fail("write socket");
            if (count > 0) {
                offset += (size_t)count;
                pending -= (size_t)count;
                counts->out += (unsigned long long)count;
            }
        }
        if (socket_open && (fds[0].revents & (POLLIN | POLLERR | POLLHUP))) {
            ssize_t count = read(stream, from_socket, sizeof(from_socket));
            if (count < 0 && errno != EAGAIN)
                return fail("read socket");
            if (count == 0)
                socket_open = 0;
            if (count > 0) {
                counts->in += (unsigned long long)count;
                if (write_all(STDOUT_FILENO, from_socket, (size_t)count) != 0)
                    return fail("write stdout");
            }
        }
    }
    return 0;
}

// Echoes STREAM back to itself until the peer's EOF, then half-closes.
static int echo_stream(int stream, unsigned port) {
    static char buffer[CHUNK];
    struct counts counts = {0};
    clock_gettime(CLOCK_MONOTONIC, &counts.start);
    for (;;) {
        ssize_t count = read(stream, buffer, sizeof(buffer));
        if (count < 0 && errno == EINTR)
            continue;
        if (count < 0)
            return fail("read socket");
        if (count == 0)
            break;
        counts.in += (unsigned long long)count;
        if (write_all(stream, buffer, (size_t)count) != 0)
            return fail("write socket");
        counts.out += (unsigned long long)count;
    }
    if (shutdown(stream, SHUT_WR) != 0)
        return fail("shutdown");
    report("echo", port, &counts);
    return 0;
}

static int run_echo(unsigned port, unsigned long long connections) {
    int listener = vsock_listener(port, (int)connections);
    if (listener < 0)
        return fail("listen");
    // All connections are accepted and served at once: one child each.
    for (unsigned long long index = 0; index < connections; ++index) {
        int stream = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (stream < 0)
            return fail("accept");
        pid_t child = fork();
        if (child < 0)
            return fail("fork");
        if (child == 0)
            _exit(echo_stream(stream, port));
        close(stream);
    }
    int failures = 0;
    for (int status; wait(&status) > 0;)
        failures += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return failures == 0 ? 0 : 1;
}

// Reads BYTES, then stops reading while the peer may keep sending; ends
// (closing the socket with whatever is unread) when stdin ends.
static int run_stall(unsigned port, unsigned long long bytes) {
    static char buffer[CHUNK];
    int listener = vsock_listener(port, 1);
    if (listener < 0)
        return fail("listen");
    int stream = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (stream < 0)
        return fail("accept");
    struct counts counts = {0};
    clock_gettime(CLOCK_MONOTONIC, &counts.start);
    while (counts.in < bytes) {
        size_t want =
            bytes - counts.in < sizeof(buffer) ? (size_t)(bytes - counts.in) : sizeof(buffer);
        ssize_t count = read(stream, buffer, want);
        if (count <= 0)
            return count == 0 ? (errno = EPIPE, fail("early EOF")) : fail("read socket");
        counts.in += (unsigned long long)count;
    }
    fprintf(stderr, "pv-vsock: stalling after %llu bytes\n", counts.in);
    while (read(STDIN_FILENO, buffer, sizeof(buffer)) > 0) {
    }
    report("stall", port, &counts);
    close(stream);
    return 0;
}

static int usage(void) {
    fprintf(stderr,
            "usage: pv-vsock connect PORT | listen PORT | echo PORT COUNT | stall PORT BYTES\n");
    return 2;
}

int main(int argc, char** argv) {
    unsigned long long port = 0, number = 0;
    if (argc < 3 || !parse_number(argv[2], &port) || port > UINT32_MAX)
        return usage();
    signal(SIGPIPE, SIG_IGN);
    const char* mode = argv[1];
    if ((strcmp(mode, "echo") == 0 || strcmp(mode, "stall") == 0) &&
        (argc != 4 || !parse_number(argv[3], &number)))
        return usage();
    if (strcmp(mode, "echo") == 0)
        return run_echo((unsigned)port, number);
    if (strcmp(mode, "stall") == 0)
        return run_stall((unsigned)port, number);
    if (argc != 3)
        return usage();
    int stream = -1;
    struct counts counts = {0};
    if (strcmp(mode, "connect") == 0) {
        stream = vsock_connect((unsigned)port);
        if (stream < 0)
            return fail("connect");
    } else if (strcmp(mode, "listen") == 0) {
        int listener = vsock_listener((unsigned)port, 1);
        if (listener < 0)
            return fail("listen");
        stream = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (stream < 0)
            return fail("accept");
        close(listener);
    } else {
        return usage();
    }
    clock_gettime(CLOCK_MONOTONIC, &counts.start);
    if (pipe_stream(stream, &counts) != 0)
        return 1;
    report(mode, (unsigned)port, &counts);
    return close(stream) == 0 ? 0 : fail("close");
}
