#include "api/image_device.hpp"

#include "api/convert.hpp"

namespace pv::api {

namespace {

Result<void> internal_result(patchvisor::Result<void>&& result) {
    if (result)
        return {};
    return fail(to_internal(std::move(result).error()));
}

}  // namespace

ImageDevice::ImageDevice(patchvisor::Image image)
    : m_image(std::move(image)),
      m_name(m_image->path()),
      m_size(m_image->size()),
      m_read_only(m_image->read_only()) {}

Result<patchvisor::Image*> ImageDevice::image(const char* verb) {
    if (!m_image)
        return fail(make_error(std::string(verb) + " " + m_name, "the image was taken back"));
    return &*m_image;
}

Result<void> ImageDevice::read_at(std::span<std::byte> buffer, uint64_t offset) {
    return internal_result(PV_TRY(image("read"))->read(offset, buffer));
}

Result<void> ImageDevice::write_at(std::span<const std::byte> buffer, uint64_t offset) {
    return internal_result(PV_TRY(image("write"))->write(offset, buffer));
}

Result<void> ImageDevice::flush() {
    return internal_result(PV_TRY(image("flush"))->flush());
}

Result<void> ImageDevice::write_zeroes(uint64_t offset, uint64_t length) {
    return internal_result(PV_TRY(image("write zeroes to"))->write_zeroes(offset, length));
}

Result<void> ImageDevice::discard(uint64_t offset, uint64_t length) {
    return internal_result(PV_TRY(image("discard in"))->discard(offset, length));
}

Result<patchvisor::Image> ImageDevice::take() {
    if (!m_image)
        return fail(make_error("take back the disk " + m_name, "it was taken already"));
    patchvisor::Image taken = std::move(*m_image);
    m_image.reset();
    return taken;
}

}  // namespace pv::api
