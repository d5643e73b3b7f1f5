#include "patcher/sandbox/jail/fuse_export.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "patcher/sandbox/jail/fuse_state.hpp"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

namespace pv::sandbox {

namespace {

using State = FuseExport::State;

// Serves requests until the connection ends (unmount, abort) or a byte on
// the wake eventfd asks it to stop. Our own loop rather than
// fuse_session_loop() because that one can only be woken by a signal.
void serve(State& state) {
    // This thread answers the loop device's I/O; memory reclaim in it must
    // never wait for writeback to that same loop device (prctl(2)). It
    // needs CAP_SYS_RESOURCE, which containers often drop: then we run
    // without it rather than not at all.
    if (::prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) != 0 && errno != EPERM)
        std::fprintf(stderr, "patchvisor: FUSE export %s: PR_SET_IO_FLUSHER: %s\n",
                     state.file_path.c_str(), std::strerror(errno));
    fuse_buf buffer{};
    pollfd watched[2] = {{fuse_session_fd(state.session), POLLIN, 0},
                         {state.wake.get(), POLLIN, 0}};
    while (!fuse_session_exited(state.session)) {
        if (::poll(watched, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            std::fprintf(stderr, "patchvisor: FUSE export poll: %s\n", std::strerror(errno));
            break;
        }
        if (watched[1].revents != 0 || (watched[0].revents & (POLLERR | POLLHUP)) != 0)
            break;
        const int received = fuse_session_receive_buf(state.session, &buffer);
        if (received == -EINTR || received == -EAGAIN)
            continue;
        if (received <= 0)
            break;  // -ENODEV: unmounted
        fuse_session_process_buf(state.session, &buffer);
    }
    std::free(buffer.mem);
}

// A session that only speaks the protocol: no options beyond the defaults.
Result<fuse_session*> new_session(State& state) {
    char program[] = "patchvisor-export";
    char* argv[] = {program, nullptr};
    fuse_args arguments = FUSE_ARGS_INIT(1, argv);
    fuse_session* session =
        fuse_session_new(&arguments, &export_operations(), sizeof(fuse_lowlevel_ops), &state);
    if (session == nullptr)
        return fail(make_error("create FUSE session for " + state.mountpoint, "fuse_session_new"));
    return session;
}

// A SIGKILLed patchvisor closes its descriptors in ascending order, and the
// kernel runs the final releases in reverse (task_work is LIFO). The loop
// device attached to this export is opened later, so its descriptor would
// be released first and, as the last user, wait for I/O on the export that
// only this dead process could answer: the exit hung in D state (the crash
// matrix saw it in about 1 of 150 kills). Above every descriptor opened
// later, /dev/fuse is released first, which aborts the connection and fails
// that I/O instead.
// Under an RLIMIT_NOFILE at or below the floor the descriptor stays where
// it is: the export works the same, only that rare hang is back.
constexpr int kFuseDescriptorFloor = 512;

Fd high_descriptor(Fd descriptor) {
    Fd high(::fcntl(descriptor.get(), F_DUPFD_CLOEXEC, kFuseDescriptorFloor));
    return high.valid() ? std::move(high) : std::move(descriptor);
}

// mount(2) with our own /dev/fuse descriptor, then hand the descriptor to
// libfuse as "/dev/fd/N" (it then never mounts or unmounts by itself).
Result<void> mount_session(State& state, const std::string& source) {
    Fd device = high_descriptor(PV_TRY(Fd::open("/dev/fuse", O_RDWR)));
    const std::string options =
        fmt::format("fd={},rootmode=40000,user_id=0,group_id=0,default_permissions", device.get());
    if (::mount(source.c_str(), state.mountpoint.c_str(), "fuse.patchvisor",
                MS_NOSUID | MS_NODEV | MS_NOEXEC, options.c_str()) != 0)
        return fail(errno_error("mount FUSE export at " + state.mountpoint));
    state.mounted = true;
    const std::string handle = fmt::format("/dev/fd/{}", device.get());
    if (fuse_session_mount(state.session, handle.c_str()) != 0)
        return fail(
            make_error("attach FUSE session to " + state.mountpoint, "fuse_session_mount failed"));
    (void)device.release();  // the session owns it now and closes it in destroy
    return {};
}

Result<void> unmount(State& state) {
    if (!state.mounted)
        return {};
    state.mounted = false;
    if (::umount2(state.mountpoint.c_str(), UMOUNT_NOFOLLOW) == 0)
        return {};
    Error error = errno_error("unmount FUSE export " + state.mountpoint);
    // Still in use: detach it from the tree; destroying the session below
    // aborts the connection, so users get errors instead of hanging.
    if (::umount2(state.mountpoint.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0)
        std::fprintf(stderr, "patchvisor: lazy unmount of %s: %s\n", state.mountpoint.c_str(),
                     std::strerror(errno));
    return fail(std::move(error));
}

}  // namespace

Result<FuseExport> FuseExport::start(img::BlockDevice& device, const std::string& mountpoint,
                                     const std::string& source, const std::string& file_name) {
    auto state = std::make_unique<State>(device);
    state->mountpoint = mountpoint;
    state->file_name = file_name;
    state->file_path = mountpoint + "/" + file_name;
    ::clock_gettime(CLOCK_REALTIME, &state->started);
    const int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake < 0)
        return fail(errno_error("eventfd for FUSE export"));
    state->wake = Fd(wake);
    state->session = PV_TRY(new_session(*state));
    // From here the FuseExport owns the session and undoes a partial start.
    FuseExport owner(std::move(state));
    State& started = *owner.m_state;
    PV_TRY(mount_session(started, source));
    started.thread = std::thread([&started] { serve(started); });
    return owner;
}

FuseExport::FuseExport(std::unique_ptr<State> state) : m_state(std::move(state)) {}
FuseExport::FuseExport(FuseExport&& other) noexcept = default;

FuseExport& FuseExport::operator=(FuseExport&& other) noexcept {
    if (this != &other) {
        if (auto stopped = stop(); !stopped)
            std::fprintf(stderr, "patchvisor: %s\n", stopped.error().message().c_str());
        m_state = std::move(other.m_state);
    }
    return *this;
}

FuseExport::~FuseExport() {
    if (auto stopped = stop(); !stopped)
        std::fprintf(stderr, "patchvisor: %s\n", stopped.error().message().c_str());
}

const std::string& FuseExport::file_path() const {
    return m_state->file_path;
}
const std::string& FuseExport::mountpoint() const {
    return m_state->mountpoint;
}
uint64_t FuseExport::io_errors() const {
    return m_state->io_errors.load();
}

Result<void> FuseExport::stop() {
    if (!m_state || m_state->session == nullptr)
        return {};
    State& state = *m_state;
    // Unmount while the thread still serves, in case the kernel asks
    // something on the way out.
    auto unmounted = unmount(state);
    if (state.thread.joinable()) {
        const uint64_t one = 1;
        if (::write(state.wake.get(), &one, sizeof(one)) < 0)
            std::fprintf(stderr, "patchvisor: wake FUSE thread: %s\n", std::strerror(errno));
        state.thread.join();
    }
    // Closes /dev/fuse, which aborts the connection if a copy of the mount
    // survives in another mount namespace.
    fuse_session_destroy(state.session);
    state.session = nullptr;
    return unmounted;
}

}  // namespace pv::sandbox
