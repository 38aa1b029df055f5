using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Radlads.Tokenization;

namespace Radlads.Tests.Tokenization;

/// <summary>
/// Small byte-level BPE tokenizer.json files (~400 tokens, like the test-fixture models ship) in the forms the
/// Hugging Face library writes, each checked against the Hugging Face library on the same file.
/// </summary>
public sealed class SmallTokenizerTests : IDisposable
{
    private static readonly Lazy<(List<string> Vocab, List<(string, string)> Merges)> SmallModel = new(BuildSmallModel);

    private readonly string _dir = Directory.CreateTempSubdirectory("radlads-tok-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> Variants => ["arrays", "strings", "ignore_merges", "gpt2", "added-options", "no-normalizer"];

    [Theory]
    [MemberData(nameof(Variants))]
    public void IdsEqualHuggingFace(string variant)
    {
        string path = Write(variant, Build(variant));
        QwenTokenizer ours = QwenTokenizer.FromFile(path);
        using var oracle = new Oracle(path);

        var inputs = TestData.CorpusLines().Take(400).ToList();
        inputs.AddRange(QwenOracleTests.HardCases.Select(row => row.Data).Where(s => !s.Any(char.IsSurrogate)));
        inputs.AddRange([
            "a [MASK] b  [MASK]x [MASK]", "x <sep>  y<sep>\n z", "word words sword word_ word. (word)", "cafe\u0301 caf\u00E9 CAFE\u0301",
            "hello world, hello there; the thing is nothing", "<|im_start|>user\nhi<|im_end|>\n", " hello", "hello",
        ]);
        foreach (string text in inputs)
        {
            int[] theirs = oracle.Encode(text);
            Assert.True(theirs.SequenceEqual(ours.Encode(text)),
                $"{variant}: '{text}'\n ours:   [{string.Join(",", ours.Encode(text))}]\n theirs: [{string.Join(",", theirs)}]");
            Assert.Equal(oracle.DecodeSkippingSpecial(theirs), ours.Decode(theirs, skipSpecialTokens: true));
        }

        Assert.True(ours.VocabularySize is > 300 and < 500, $"{ours.VocabularySize} tokens");
    }

    [Fact]
    public void AddedTokenOptionsAndIgnoreMergesTakeEffect()
    {
        // The oracle comparison above would pass vacuously if these paths were never taken: pin them down.
        QwenTokenizer t = QwenTokenizer.FromFile(Write("added-options", Build("added-options")));
        int mask = t.SpecialTokens["[MASK]"], sep = t.SpecialTokens["<sep>"], word = t.SpecialTokens["word"], cafe = t.SpecialTokens["caf\u00E9"];
        int a = t.TokenToId("a")!.Value, x = t.TokenToId("x")!.Value;
        Assert.Equal([a, mask], t.Encode("a   [MASK]")); // lstrip takes the spaces before
        Assert.Equal([sep, x], t.Encode("<sep>  \n x")); // rstrip takes the whitespace after
        Assert.Equal([word], t.Encode("word"));
        Assert.DoesNotContain(word, t.Encode("sword words word_")); // single_word: not inside a word
        Assert.Equal([cafe], t.Encode("cafe\u0301")); // normalized: matched after NFC

        QwenTokenizer ignoring = QwenTokenizer.FromFile(Write("ignore_merges", Build("ignore_merges")));
        Assert.Equal([ignoring.TokenToId("Ġhello")!.Value], ignoring.Encode(" hello"));
        QwenTokenizer merging = QwenTokenizer.FromFile(Write("arrays", Build("arrays")));
        Assert.True(merging.Encode(" hello").Length > 1);
    }

    [Fact]
    public void EveryCharacterIsSplitAsHuggingFaceSplitsIt()
    {
        // A vocabulary whose merges join "x" or a space (Ġ) with any following byte makes the pre-tokenizer's
        // pieces visible in the ids: in " c xc", Ġ+c merges only if the regex keeps the space with c, and x+c only
        // if c counts as a letter. Every assigned code point goes through both tokenizers this way, so a
        // difference in \p{L}, \p{N}, \s (Oniguruma's Unicode data against .NET's) or NFC shows up.
        JsonObject json = Build("arrays");
        var vocab = new JsonObject();
        var merges = new JsonArray();
        foreach (char b in Radlads.Tokenization.ByteLevel.ByteToChar)
        {
            vocab[b.ToString()] = vocab.Count;
        }

        foreach (string first in new[] { "x", "Ġ" })
        {
            foreach (char b in Radlads.Tokenization.ByteLevel.ByteToChar)
            {
                vocab[first + b] = vocab.Count;
                merges.Add(new JsonArray(first, b.ToString()));
            }
        }

        json["model"]!["vocab"] = vocab;
        json["model"]!["merges"] = merges;
        json["added_tokens"] = new JsonArray();
        string path = Write("probe", json);
        QwenTokenizer ours = QwenTokenizer.FromFile(path);
        using var oracle = new Oracle(path);

        var differing = new List<int>();
        var chunk = new StringBuilder();
        var chunkCps = new List<int>();
        int total = 0;
        for (int cp = 0x80; cp <= 0x10FFFF; cp++)
        {
            if (cp is >= 0xD800 and < 0xE000 || Rune.GetUnicodeCategory(new Rune(cp)) is UnicodeCategory.OtherNotAssigned or UnicodeCategory.PrivateUse)
            {
                continue;
            }

            string c = char.ConvertFromUtf32(cp);
            chunk.Append(' ').Append(c).Append(" x").Append(c);
            chunkCps.Add(cp);
            total++;
            if (chunkCps.Count == 4000 || cp == 0x10FFFF)
            {
                string text = chunk.ToString();
                if (!ours.Encode(text).SequenceEqual(oracle.Encode(text)))
                {
                    differing.AddRange(chunkCps.Where(c =>
                    {
                        string one = " " + char.ConvertFromUtf32(c) + " x" + char.ConvertFromUtf32(c);
                        return !ours.Encode(one).SequenceEqual(oracle.Encode(one));
                    }));
                }

                chunk.Clear();
                chunkCps.Clear();
            }
        }

        Assert.True(total > 150_000, $"{total} code points");
        Assert.True(differing.Count == 0, $"{differing.Count} code points split differently: U+{string.Join(" U+", differing.Take(100).Select(c => c.ToString("X4")))}");
    }

    [Fact]
    public void WithoutPreTokenizerQwensRegexIsTheDefault()
    {
        JsonObject withRegex = Build("arrays");
        JsonObject without = Build("arrays");
        without.Remove("pre_tokenizer");
        QwenTokenizer a = QwenTokenizer.FromFile(Write("with", withRegex));
        QwenTokenizer b = QwenTokenizer.FromFile(Write("without", without));
        foreach (string text in TestData.CorpusLines().Take(200).Append("I'M 12345 a  \n\n b"))
        {
            Assert.Equal(a.Encode(text), b.Encode(text));
        }
    }

    [Fact]
    public void SplitRegexHandlesCharactersOutsideTheBmp()
    {
        SplitPreTokenizer split = SplitPreTokenizer.Create(SplitPreTokenizer.QwenPattern);
        // 𝐀𝐁𝐂 are letters (one piece with the leading space), 𝟘𝟙 digits (one piece each), 😀 a symbol.
        string text = " 𝐀𝐁𝐂 a𝟘𝟙😀";
        string[] pieces = [.. split.Split(text).Select(p => text.Substring(p.Offset, p.Length))];
        Assert.Equal([" 𝐀𝐁𝐂", " a", "𝟘", "𝟙", "😀"], pieces);
    }

    internal string Write(string name, JsonObject json)
    {
        string path = Path.Combine(_dir, name + ".json");
        File.WriteAllText(path, json.ToJsonString());
        return path;
    }

    /// <summary>A tokenizer.json shaped like Qwen's, with a ~400-token vocabulary.</summary>
    internal static JsonObject Build(string variant)
    {
        (List<string> vocabList, List<(string Left, string Right)> merges) = SmallModel.Value;
        var vocab = new JsonObject();
        for (int i = 0; i < vocabList.Count; i++)
        {
            vocab[vocabList[i]] = i;
        }

        int next = vocabList.Count;
        if (variant == "ignore_merges")
        {
            foreach (string whole in new[] { "Ġhello", "hello", "Ġnothing", "Ġthere" })
            {
                if (!vocab.ContainsKey(whole))
                {
                    vocab[whole] = next++; // in the vocabulary but not reachable by merges
                }
            }
        }

        var added = new JsonArray();
        void Add(string content, bool special, bool normalized = false, bool lstrip = false, bool rstrip = false, bool singleWord = false) =>
            added.Add(new JsonObject
            {
                ["id"] = next++,
                ["content"] = content,
                ["single_word"] = singleWord,
                ["lstrip"] = lstrip,
                ["rstrip"] = rstrip,
                ["normalized"] = normalized,
                ["special"] = special,
            });
        Add("<|endoftext|>", special: true);
        Add("<|im_start|>", special: true);
        Add("<|im_end|>", special: true);
        if (variant == "added-options")
        {
            Add("[MASK]", special: true, lstrip: true);
            Add("<sep>", special: false, rstrip: true);
            Add("word", special: false, singleWord: true);
            Add("caf\u00E9", special: false, normalized: true);
        }

        JsonNode ByteLevel(bool useRegex) => new JsonObject
        {
            ["type"] = "ByteLevel",
            ["add_prefix_space"] = false,
            ["trim_offsets"] = false,
            ["use_regex"] = useRegex,
        };

        JsonNode preTokenizer = variant == "gpt2"
            ? ByteLevel(useRegex: true)
            : new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject
                    {
                        ["type"] = "Split",
                        ["pattern"] = new JsonObject { ["Regex"] = SplitPreTokenizer.QwenPattern },
                        ["behavior"] = "Isolated",
                        ["invert"] = false,
                    },
                    ByteLevel(useRegex: false)),
            };

        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = variant == "no-normalizer" ? null : new JsonObject { ["type"] = "NFC" },
            ["pre_tokenizer"] = preTokenizer,
            ["post_processor"] = ByteLevel(useRegex: false),
            ["decoder"] = ByteLevel(useRegex: false),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = null,
                ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false,
                ["byte_fallback"] = false,
                ["ignore_merges"] = variant == "ignore_merges",
                ["vocab"] = vocab,
                ["merges"] = new JsonArray([.. merges.Select(m => variant == "strings"
                    ? (JsonNode)JsonValue.Create($"{m.Left} {m.Right}")
                    : new JsonArray(m.Left, m.Right))]),
            },
        };
    }

    /// <summary>The 256 byte tokens plus Qwen's first merges (in rank order) whose parts are already there, up to 400 tokens.</summary>
    private static (List<string>, List<(string, string)>) BuildSmallModel()
    {
        TokenizerJson qwen = TokenizerJson.Load(TestData.QwenTokenizerJson);
        var vocab = new List<string>(Radlads.Tokenization.ByteLevel.ByteToChar.Select(c => c.ToString()));
        var known = new HashSet<string>(vocab);
        var merges = new List<(string, string)>();
        foreach ((string left, string right) in qwen.Merges)
        {
            if (vocab.Count >= 400)
            {
                break;
            }

            if (known.Contains(left) && known.Contains(right) && known.Add(left + right))
            {
                vocab.Add(left + right);
                merges.Add((left, right));
            }
        }

        return (vocab, merges);
    }
}
