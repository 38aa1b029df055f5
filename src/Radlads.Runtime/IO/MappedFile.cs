using System.IO.MemoryMappedFiles;

namespace Radlads.IO;

/// <summary>
/// A whole file memory-mapped read-only, with a pointer to its first byte that stays valid until
/// <see cref="Dispose"/>. Shared by the safetensors reader and the token file reader.
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile map;
    private readonly MemoryMappedViewAccessor view;
    private byte* pointer;

    private MappedFile(MemoryMappedFile map, MemoryMappedViewAccessor view, byte* pointer, long length)
    {
        this.map = map;
        this.view = view;
        this.pointer = pointer;
        Length = length;
    }

    /// <summary>The first byte of the file (the view's page rounding already accounted for).</summary>
    public byte* Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(pointer == null, this);
            return pointer;
        }
    }

    public long Length { get; }

    /// <summary>Opens <paramref name="path"/> for reading; failure is a <see cref="RadladsException"/> naming the file.</summary>
    public static FileStream OpenRead(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RadladsException($"{path}: cannot open ({e.Message})", e);
        }
    }

    /// <summary>Maps all of <paramref name="stream"/> (a non-empty file), taking ownership of it, also when mapping fails.</summary>
    public static MappedFile Map(FileStream stream, string path)
    {
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        bool acquired = false;
        try
        {
            long length = stream.Length;
            try
            {
                map = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
                view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new RadladsException($"{path}: cannot memory-map ({e.Message})", e);
            }

            byte* start = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
            acquired = true;
            return new MappedFile(map, view, start + view.PointerOffset, length);
        }
        catch
        {
            if (acquired)
            {
                view!.SafeMemoryMappedViewHandle.ReleasePointer();
            }

            view?.Dispose();
            map?.Dispose();
            stream.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (pointer == null)
        {
            return;
        }

        pointer = null;
        view.SafeMemoryMappedViewHandle.ReleasePointer();
        view.Dispose();
        map.Dispose();
    }
}
