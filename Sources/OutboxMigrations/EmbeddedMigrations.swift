import LibPQ

/// The schema's migrations as built into the binary: the files of `migrations/` when it was
/// compiled (the EmbedMigrations plugin turns them into EmbeddedMigrationFiles), so `migrate`
/// works from any directory and from the container image without the source tree.
public enum EmbeddedMigrations {
    /// Every embedded file, in version order, checked like a folder (Migration.load).
    public static func all() throws(PGError) -> [Migration] {
        try Migration.parse(files: EmbeddedMigrationFiles.files)
    }
}
