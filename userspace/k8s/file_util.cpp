#include "k8s/file_util.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace npt::k8s {

Result<std::string> read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Error{fmt::format("{}: cannot read: {}", path, std::strerror(errno))};
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return Error{fmt::format("{}: cannot read: {}", path, std::strerror(errno))};
    return ss.str();
}

FileStamp stamp_file(const std::string& path) {
    FileStamp s;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return s;
    s.dev = st.st_dev;
    s.ino = st.st_ino;
    s.size = st.st_size;
    s.mtime = st.st_mtim;
    return s;
}

std::string absolute_path(std::string_view path, std::string_view base_dir) {
    std::filesystem::path p(path);
    if (p.is_absolute() || path.empty()) return std::string(path);
    std::error_code ec;
    std::filesystem::path base = base_dir.empty() ? std::filesystem::current_path(ec) : std::filesystem::path(base_dir);
    return (base / p).lexically_normal().string();
}

std::string parent_dir(std::string_view path) {
    return std::filesystem::path(path).parent_path().string();
}

std::string_view trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return {};
    const auto last = s.find_last_not_of(" \t\r\n");
    return s.substr(first, last - first + 1);
}

}  // namespace npt::k8s
