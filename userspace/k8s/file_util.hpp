// Small file helpers for the configuration and credential files this room reads.
#pragma once

#include <sys/types.h>

#include <ctime>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace npt::k8s {

// The whole file; the error is `PATH: cannot read: <strerror>`.
Result<std::string> read_text_file(const std::string& path);

// Identity and version of a file, to notice a rotated token or certificate without re-reading it each time
// (kubelet replaces projected service-account tokens by renaming a new file into place).
struct FileStamp {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = -1;
    timespec mtime{};

    friend bool operator==(const FileStamp& a, const FileStamp& b) {
        return a.dev == b.dev && a.ino == b.ino && a.size == b.size && a.mtime.tv_sec == b.mtime.tv_sec &&
               a.mtime.tv_nsec == b.mtime.tv_nsec;
    }
};
FileStamp stamp_file(const std::string& path);  // size -1 when it cannot be stat'ed

// `path` made absolute against `base_dir` (or the current directory when base_dir is empty).
std::string absolute_path(std::string_view path, std::string_view base_dir = {});
std::string parent_dir(std::string_view path);

// Leading and trailing whitespace removed (token files often end in a newline).
std::string_view trim(std::string_view s);

}  // namespace npt::k8s
