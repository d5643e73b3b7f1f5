#pragma once

namespace pv {

// Whether something (an image, a loop device, a guest's disk) may be written:
// one enum for the whole project, so no layer converts between its own.
enum class Access { ReadOnly, ReadWrite };

}  // namespace pv
