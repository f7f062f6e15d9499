"""The one translation table: every user-visible string, in English and Chinese.

Core errors, skip reasons and warnings carry a key from this table and their
parameters; the CLI renders them in English (or ``LABELTUNE_LANG``), the app in
the language chosen in the sidebar. A test checks that both languages exist
for every key and use the same placeholders.
"""

from __future__ import annotations

import os
from typing import Any

LANGUAGES: dict[str, str] = {"zh": "中文", "en": "English"}
DEFAULT_LANGUAGE = "en"

# key: (English, 中文)
MESSAGES: dict[str, tuple[str, str]] = {
    # --- app shell ---
    "app.title": ("LabelTune", "LabelTune"),
    "app.tagline": (
        "From a zip of labelled photos to a fine-tuned, evaluated, exported image classifier.",
        "从一个带标签的图片压缩包，到微调、评估并导出的图像分类模型。",
    ),
    "app.language": ("Language", "语言"),
    "app.workspace": ("Workspace: `{path}`", "工作区：`{path}`"),
    "app.datasets_count": ("{count} dataset(s) in this workspace", "本工作区共有 {count} 个数据集"),
    "app.coming_soon": (
        "This page arrives in a later release. The Dataset and Train pages work now.",
        "此页面将在后续版本中提供。数据集和训练页面现已可用。",
    ),
    "nav.dataset": ("Dataset", "数据集"),
    "nav.label": ("Label", "标注"),
    "nav.train": ("Train", "训练"),
    "nav.evaluate": ("Evaluate", "评估"),
    "nav.predict": ("Predict", "预测"),
    # --- dataset page ---
    "dataset.header": ("Dataset", "数据集"),
    "dataset.import_header": ("Import a zip", "导入压缩包"),
    "dataset.upload": ("Zip of images", "图片压缩包（zip）"),
    "dataset.upload_help": (
        "One folder per class; or train/ val/ test/ folders holding class folders; or a CSV manifest "
        "(filename,label[,split]). Optional classes.csv or classes.json with class descriptions.",
        "每个类别一个文件夹；或 train/ val/ test/ 文件夹内再按类别分文件夹；或 CSV 清单"
        "（filename,label[,split]）。可附 classes.csv 或 classes.json 写入各类别的标签说明。",
    ),
    "dataset.name": ("Dataset name", "数据集名称"),
    "dataset.split_header": (
        "Split for archives without train/val/test",
        "压缩包未划分时的训练/验证/测试比例",
    ),
    "dataset.val_pct": ("Validation %", "验证集 %"),
    "dataset.test_pct": ("Test %", "测试集 %"),
    "dataset.seed": ("Split seed", "划分随机种子"),
    "dataset.import_button": ("Import", "导入"),
    "dataset.importing": ("Importing {done}/{total} images…", "正在导入 {done}/{total} 张图片…"),
    "dataset.imported": (
        "Imported {images} images into dataset “{name}” in {seconds:.1f} s.",
        "已导入 {images} 张图片到数据集“{name}”，用时 {seconds:.1f} 秒。",
    ),
    "dataset.none_yet": (
        "No dataset yet. Upload a zip above to start.",
        "还没有数据集。请在上方上传压缩包开始。",
    ),
    "dataset.choose": ("Dataset", "数据集"),
    "dataset.summary": (
        "{images} images · {classes} classes · {unlabeled} unlabeled · layout: {layout} · from {source}",
        "{images} 张图片 · {classes} 个类别 · {unlabeled} 张未标注 · 结构：{layout} · 来源 {source}",
    ),
    "dataset.classes_header": ("Classes", "类别"),
    "dataset.samples_header": ("Samples", "样例"),
    "dataset.unlabeled_class": ("(unlabeled)", "（未标注）"),
    "dataset.col_class": ("Class", "类别"),
    "dataset.col_images": ("Images", "图片数"),
    "dataset.col_description": ("Description", "标签说明"),
    "split.train": ("train", "训练"),
    "split.val": ("val", "验证"),
    "split.test": ("test", "测试"),
    "layout.folders": ("folder per class", "按类别分文件夹"),
    "layout.splits": ("train/val/test folders", "train/val/test 文件夹"),
    "layout.manifest": ("CSV manifest", "CSV 清单"),
    # --- quality report ---
    "report.header": ("Quality report", "质量报告"),
    "report.all_good": ("No problems found.", "未发现问题。"),
    "report.skipped": ("Skipped files ({count})", "跳过的文件（{count}）"),
    "report.duplicates": ("Exact duplicates ({count})", "完全重复的图片（{count}）"),
    "report.conflicts": ("Same image under two labels ({count})", "同一图片有不同标签（{count}）"),
    "report.small": ("Very small images ({count})", "过小的图片（{count}）"),
    "report.col_entry": ("File", "文件"),
    "report.col_reason": ("Reason", "原因"),
    "report.col_files": ("Files", "文件"),
    "report.col_labels": ("Labels", "标签"),
    "report.col_size": ("Size", "尺寸"),
    # --- warnings ---
    "warn.no_labels": (
        "No image has a label yet: label them on the Label page before training.",
        "还没有任何图片带标签：训练前请在“标注”页面进行标注。",
    ),
    "warn.single_class": (
        "Only one class (“{name}”): training needs two or more classes.",
        "只有一个类别（“{name}”）：训练至少需要两个类别。",
    ),
    "warn.too_small_to_split": (
        "Too few images to split, all kept for training: {classes}.",
        "以下类别图片太少无法划分，已全部用于训练：{classes}。",
    ),
    "warn.few_images": (
        "Fewer than {minimum} images in: {classes}. Add more for a reliable model.",
        "以下类别少于 {minimum} 张图片：{classes}。建议补充更多图片。",
    ),
    "warn.empty_classes": (
        "Classes described but without images: {classes}.",
        "以下类别有说明但没有图片：{classes}。",
    ),
    "warn.imbalance": (
        "Classes are imbalanced: “{largest}” has {ratio}× the images of “{smallest}”. "
        "Class weights (on by default in training) help; more images of the small classes help more.",
        "类别不均衡：“{largest}”的图片数是“{smallest}”的 {ratio} 倍。"
        "训练默认启用类别权重；为少数类别补充图片效果更好。",
    ),
    "warn.duplicates": (
        "{count} image(s) appear more than once; copies are kept in the same split.",
        "{count} 张图片重复出现；重复项已放在同一划分中。",
    ),
    "warn.label_conflicts": (
        "{count} image(s) carry two different labels: fix them on the Label page.",
        "{count} 张图片带有两个不同的标签：请在“标注”页面修正。",
    ),
    "warn.small_images": (
        "{count} image(s) are smaller than {side} px on their shorter side.",
        "{count} 张图片短边小于 {side} 像素。",
    ),
    "warn.skipped": ("{count} file(s) were skipped; see the list below.", "{count} 个文件被跳过；详见下方列表。"),
    "warn.val_carved": (
        "The archive had no validation split: part of train was held out for validation.",
        "压缩包中没有验证集：已从训练集中划出一部分作为验证集。",
    ),
    "warn.no_test": (
        "No test split: final accuracy will be measured on validation images.",
        "没有测试集：最终准确率将在验证集上计算。",
    ),
    # --- skip reasons (each also receives {entry}) ---
    "skip.symlink": ("symbolic link: not followed", "符号链接：不予跟随"),
    "skip.encrypted": ("encrypted entry: cannot be read without its password", "加密条目：没有密码无法读取"),
    "skip.duplicate_name": ("second entry with the same name: the first was kept", "同名的第二个条目：已保留第一个"),
    "skip.nested_archive": ("archive inside the archive: not opened", "压缩包内的压缩包：不予打开"),
    "skip.not_image": ("not an image file (extension {ext})", "不是图片文件（扩展名 {ext}）"),
    "skip.ratio": (
        "compression ratio {ratio}:1 exceeds {limit}:1 (possible zip bomb)",
        "压缩比 {ratio}:1 超过 {limit}:1（可能是压缩炸弹）",
    ),
    "skip.too_large": (
        "{size_mb} MB exceeds the {limit_mb} MB per-image limit",
        "{size_mb} MB 超过单张图片 {limit_mb} MB 的上限",
    ),
    "skip.corrupt_entry": ("damaged in the archive: {reason}", "压缩包中的数据已损坏：{reason}"),
    "skip.manifest_outside": ("path {file} points outside the archive", "路径 {file} 指向压缩包之外"),
    "skip.manifest_missing": ("file {file} is not in the archive", "压缩包中没有文件 {file}"),
    "skip.manifest_repeat": (
        "file {file} is listed twice: the first row was kept",
        "文件 {file} 被列出两次：已保留第一行",
    ),
    "skip.manifest_split": (
        "unknown split “{value}” (use train, val or test): split chosen automatically",
        "未知的划分“{value}”（应为 train、val 或 test）：已自动划分",
    ),
    "skip.outside_splits": (
        "folder {folder} is not train, val, test or unlabeled",
        "文件夹 {folder} 不是 train、val、test 或 unlabeled",
    ),
    # --- errors ---
    "err.workspace_unusable": ("Cannot use the workspace {path}: {reason}", "无法使用工作区 {path}：{reason}"),
    "err.image_unsupported": (
        "{name}: not a supported image (allowed: {formats})",
        "{name}：不支持的图片格式（支持：{formats}）",
    ),
    "err.image_corrupt": ("{name}: damaged image ({reason})", "{name}：图片已损坏（{reason}）"),
    "err.image_too_many_pixels": (
        "{name}: {pixels} pixels exceed the limit of {limit}",
        "{name}：{pixels} 像素超过上限 {limit}",
    ),
    "err.config_range": (
        "{field} must be between {low} and {high}. Received {field}={value}.",
        "{field} 必须在 {low} 与 {high} 之间。收到 {field}={value}。",
    ),
    "err.split_sum": (
        "train, val and test fractions must add up to 1. Received a total of {total}.",
        "训练、验证、测试比例之和必须为 1。当前合计 {total}。",
    ),
    "err.unsafe_path": (
        "Archive rejected: entry {entry} is unsafe ({rule}). Nothing was imported.",
        "压缩包被拒绝：条目 {entry} 不安全（{rule}）。未导入任何内容。",
    ),
    "err.archive_unreadable": ("Cannot read {archive}: {reason}", "无法读取 {archive}：{reason}"),
    "err.archive_empty": ("{archive} is an empty file, not a zip.", "{archive} 是空文件，不是 zip 压缩包。"),
    "err.archive_no_entries": ("{archive} is a zip with nothing in it.", "{archive} 是一个空的 zip 压缩包。"),
    "err.archive_too_large": (
        "{archive} is {size_mb} MB, over the {limit_mb} MB archive limit. Split it into smaller zips.",
        "{archive} 大小为 {size_mb} MB，超过 {limit_mb} MB 的上限。请拆分为多个较小的压缩包。",
    ),
    "err.not_a_zip": (
        "{archive} is not a readable zip file ({reason}). Re-create it with a zip tool.",
        "{archive} 不是可读取的 zip 文件（{reason}）。请用压缩工具重新打包。",
    ),
    "err.too_many_entries": (
        "{archive} has {count} entries, over the limit of {limit}.",
        "{archive} 含有 {count} 个条目，超过上限 {limit}。",
    ),
    "err.total_too_large": (
        "{archive} would unpack to {size_mb} MB, over the {limit_mb} MB limit.",
        "{archive} 解压后为 {size_mb} MB，超过 {limit_mb} MB 的上限。",
    ),
    "err.no_images": (
        "{archive} holds no image files ({skipped} other entries skipped). Supported: JPEG, PNG, WebP, BMP, GIF, TIFF.",
        "{archive} 中没有图片文件（跳过了 {skipped} 个其他条目）。支持：JPEG、PNG、WebP、BMP、GIF、TIFF。",
    ),
    "err.no_valid_images": (
        "No image in {archive} could be read ({skipped} skipped; see the reasons).",
        "{archive} 中没有可读取的图片（跳过 {skipped} 个；见原因）。",
    ),
    "err.manifest_encoding": (
        "{file}: text is neither UTF-8 nor GBK. Save it as “CSV UTF-8”.",
        "{file}：文本既不是 UTF-8 也不是 GBK。请另存为“CSV UTF-8”。",
    ),
    "err.manifest_empty": ("{file} has no rows.", "{file} 没有任何数据行。"),
    "err.manifest_unreadable": ("Cannot read {file}: {reason}", "无法读取 {file}：{reason}"),
    "err.manifest_columns": (
        "{file}: needs columns {expected}; found: {found}.",
        "{file}：需要列 {expected}；实际为：{found}。",
    ),
    "err.manifest_ambiguous": (
        "More than one CSV manifest at the top of the archive ({files}): keep one.",
        "压缩包顶层有多个 CSV 清单（{files}）：请只保留一个。",
    ),
    "err.descriptions_invalid": (
        "{file}: cannot read class descriptions ({reason}).",
        "{file}：无法读取类别说明（{reason}）。",
    ),
    "err.dataset_exists": (
        "A dataset named “{name}” already exists. Choose another name.",
        "名为“{name}”的数据集已存在。请换一个名称。",
    ),
    "err.dataset_unknown": ("No dataset named “{name}”. Known: {known}.", "没有名为“{name}”的数据集。已有：{known}。"),
    "err.dataset_name_empty": ("The dataset name is empty.", "数据集名称为空。"),
    "err.dataset_name_long": (
        "The dataset name {name} is longer than {limit} characters.",
        "数据集名称 {name} 超过 {limit} 个字符。",
    ),
    "err.dataset_name_chars": (
        "The dataset name “{name}” contains control characters or slashes.",
        "数据集名称“{name}”包含控制字符或斜杠。",
    ),
    "err.backbone_unknown": (
        "Unknown backbone “{name}”. Choose one of: {known}.",
        "未知的骨干网络“{name}”。可选：{known}。",
    ),
    "err.augment_unknown": (
        "Unknown augmentation “{name}”. Choose one of: {known}.",
        "未知的数据增强“{name}”。可选：{known}。",
    ),
    "err.config_choice": (
        "{field} must be one of: {options}. Received {field}={value}.",
        "{field} 必须是以下之一：{options}。收到 {field}={value}。",
    ),
    "err.config_required": ("{field} is required.", "{field} 为必填项。"),
    "err.config_no_epochs": (
        "head_epochs and fine_tune_epochs are both 0: nothing to train.",
        "head_epochs 与 fine_tune_epochs 都为 0：没有可训练的内容。",
    ),
    "err.too_few_classes": (
        "Dataset “{dataset}” has {count} class(es) with images: training needs two or more.",
        "数据集“{dataset}”只有 {count} 个有图片的类别：训练至少需要两个。",
    ),
    "err.class_without_train": (
        "Dataset “{dataset}”: no training images in class(es) {classes}. Move some images to train or relabel.",
        "数据集“{dataset}”：类别 {classes} 没有训练图片。请把部分图片划入训练集或重新标注。",
    ),
    "err.no_validation": (
        "Dataset “{dataset}” has no validation images: re-import with a validation share above 0.",
        "数据集“{dataset}”没有验证图片：请以大于 0 的验证比例重新导入。",
    ),
    "err.run_unknown": ("No run with id {run}.", "没有 id 为 {run} 的训练记录。"),
    "err.run_not_resumable": (
        "Run {run} is {status}: only stopped, failed or interrupted runs can be resumed.",
        "训练 {run} 的状态为 {status}：只有已停止、失败或中断的训练可以继续。",
    ),
    "err.dataset_changed": (
        "Dataset “{dataset}” changed since run {run} started (classes or labels): start a new run.",
        "数据集“{dataset}”在训练 {run} 开始后已更改（类别或标签）：请开始新的训练。",
    ),
    "err.weights_offline": (
        "Cannot download the ImageNet weights for {backbone} ({reason}). Keras wants the file {file} from {url}. "
        "Put it in {folder}, or pass a local weights file (--weights PATH), or train from scratch (--weights none).",
        "无法下载 {backbone} 的 ImageNet 权重（{reason}）。Keras 需要文件 {file}（来自 {url}）。"
        "请将其放到 {folder}，或指定本地权重文件（--weights PATH），或从头训练（--weights none）。",
    ),
    "err.config_views_need_augment": (
        "feature_views is {views}, but augmentation is none: the views would be identical copies. "
        "Choose an augmentation preset, or set feature_views to 1.",
        "feature_views 为 {views}，但数据增强为 none：这些视图将完全相同。请选择一种数据增强预设，或将 feature_views 设为 1。",
    ),
    "err.weights_missing": ("Weights file {path} does not exist.", "权重文件 {path} 不存在。"),
    "err.weights_mismatch": (
        "Weights file {path} does not fit backbone {backbone}: {reason}",
        "权重文件 {path} 与骨干网络 {backbone} 不匹配：{reason}",
    ),
    "err.nan_loss": (
        "The loss became NaN at epoch {epoch}, batch {batch}: lower the learning rate and try again.",
        "损失在第 {epoch} 轮第 {batch} 批变为 NaN：请降低学习率后重试。",
    ),
    "err.oom": (
        "Out of memory at batch size {batch} and image size {size}: lower the batch size or image size.",
        "在批大小 {batch}、图片尺寸 {size} 时内存不足：请降低批大小或图片尺寸。",
    ),
    # --- train page ---
    "train.header": ("Train", "训练"),
    "train.no_dataset": (
        "No dataset yet: import one on the Dataset page first.",
        "还没有数据集：请先在数据集页面导入。",
    ),
    "train.dataset": ("Dataset", "数据集"),
    "train.new_run": ("New training run", "新建训练"),
    "train.backbone": ("Backbone", "骨干网络"),
    "train.weights": ("Starting weights", "初始权重"),
    "train.weights_imagenet": ("ImageNet (downloaded once, then cached)", "ImageNet（首次下载，之后使用缓存）"),
    "train.weights_none": ("None: train from scratch", "无：从头训练"),
    "train.weights_file": ("A weights file on this machine", "本机上的权重文件"),
    "train.weights_path": ("Path of the weights file", "权重文件路径"),
    "train.image_size": ("Image size (px, 0 = the backbone's {size})", "图片尺寸（像素，0 = 骨干网络默认的 {size}）"),
    "train.head_epochs": ("Epochs with the base frozen", "冻结主干训练轮数"),
    "train.fine_tune_epochs": ("Fine-tuning epochs (base unfrozen)", "微调轮数（解冻主干）"),
    "train.augment": ("Augmentation", "数据增强"),
    "train.augment_none": ("none", "无"),
    "train.augment_light": ("light", "轻度"),
    "train.augment_standard": ("standard", "标准"),
    "train.augment_strong": ("strong", "强"),
    "train.advanced": ("Advanced settings", "高级设置"),
    "train.batch_size": ("Batch size", "批大小"),
    "train.lr": ("Learning rate (frozen phase)", "学习率（冻结阶段）"),
    "train.fine_tune_lr": ("Learning rate (fine-tuning)", "学习率（微调阶段）"),
    "train.unfreeze": ("Layers to unfreeze from the top (a number, or all)", "从顶部解冻的层数（数字或 all）"),
    "train.label_smoothing": ("Label smoothing", "标签平滑"),
    "train.dropout": ("Dropout", "Dropout 比例"),
    "train.class_weights": ("Weight classes by their counts", "按类别数量加权"),
    "train.feature_cache": ("Feature cache for the frozen phase", "冻结阶段使用特征缓存"),
    "train.early_stopping": ("Early-stopping patience (epochs, 0 = off)", "早停耐心值（轮数，0 = 关闭）"),
    "train.seed": ("Random seed", "随机种子"),
    "train.start": ("Start training", "开始训练"),
    "train.busy": (
        "Run {run} is still training: wait for it or stop it before starting another.",
        "训练 {run} 仍在进行：请等待其结束或先停止它，再开始新的训练。",
    ),
    "train.started": (
        "Run {run} started in the background; you can leave this page.",
        "训练 {run} 已在后台开始；可以离开此页面。",
    ),
    "train.history": ("Runs on this dataset", "此数据集的训练记录"),
    "train.no_runs": ("No runs on this dataset yet.", "此数据集还没有训练记录。"),
    "train.choose_run": ("Run", "训练记录"),
    "train.col_run": ("Run", "训练"),
    "train.col_status": ("Status", "状态"),
    "train.col_backbone": ("Backbone", "骨干网络"),
    "train.col_weights": ("Weights used", "使用的权重"),
    "train.col_epochs": ("Epochs", "轮数"),
    "train.col_best_val": ("Best val. accuracy", "最佳验证准确率"),
    "train.col_test": ("Test accuracy", "测试准确率"),
    "train.col_started": ("Created", "创建时间"),
    "train.run_caption": (
        "{backbone} · weights: {weights} · {size} px · batch {batch} · {device}",
        "{backbone} · 权重：{weights} · {size} 像素 · 批大小 {batch} · {device}",
    ),
    "train.preparing": (
        "Preparing: loading TensorFlow, building the model and caching features…",
        "准备中：正在加载 TensorFlow、构建模型并缓存特征……",
    ),
    "train.progress": (
        "Epoch {epoch} of at most {total} ({phase}) · {speed:.1f} images/s · phase ETA {eta}",
        "第 {epoch} 轮，最多 {total} 轮（{phase}）· 每秒 {speed:.1f} 张 · 本阶段预计剩余 {eta}",
    ),
    "train.phase_head": ("frozen base", "冻结主干"),
    "train.phase_fine_tune": ("fine-tuning", "微调"),
    "train.best_val": ("Best val. accuracy", "最佳验证准确率"),
    "train.final_val": ("Final val. accuracy", "最终验证准确率"),
    "train.test_acc": ("Test accuracy", "测试准确率"),
    "train.epochs_run": ("Epochs run", "已训练轮数"),
    "train.curve_loss": ("Loss", "损失"),
    "train.curve_accuracy": ("Accuracy", "准确率"),
    "train.curve_epoch": ("Epoch", "轮次"),
    "train.series_train": ("train", "训练"),
    "train.series_val": ("validation", "验证"),
    "train.stop": ("Stop after this batch", "在本批结束后停止"),
    "train.stop_requested": (
        "Stop requested: the run stops at the end of its current batch and keeps its best model.",
        "已请求停止：训练将在当前批结束后停止，并保留最佳模型。",
    ),
    "train.resume": ("Resume from the last epoch", "从上一轮继续"),
    "train.resumed": ("Run {run} resumes in the background.", "训练 {run} 已在后台继续。"),
    "train.model_saved": ("Model saved: `{path}`", "模型已保存：`{path}`"),
    "status.queued": ("queued", "排队中"),
    "status.running": ("running", "训练中"),
    "status.completed": ("completed", "已完成"),
    "status.stopped": ("stopped", "已停止"),
    "status.failed": ("failed", "失败"),
    "status.interrupted": ("interrupted", "已中断"),
    # --- backbones ---
    "backbone.resnet50": (
        "ResNet50 · 25 M parameters · solid default, slow on CPU; pick it on a GPU.",
        "ResNet50 · 2500 万参数 · 稳妥的默认选择，CPU 上较慢；适合有 GPU 时使用。",
    ),
    "backbone.resnet50_v2": (
        "ResNet50 V2 · 25 M parameters · pre-activation ResNet, often a little more accurate.",
        "ResNet50 V2 · 2500 万参数 · 预激活 ResNet，通常略更准确。",
    ),
    "backbone.resnet101": (
        "ResNet101 · 44 M parameters · deeper and slower; for large datasets on a GPU.",
        "ResNet101 · 4400 万参数 · 更深更慢；适合 GPU 上的大数据集。",
    ),
    "backbone.mobilenet_v2": (
        "MobileNetV2 · 0.4–4 M parameters by width · fast on laptops and phones; good first try on CPU.",
        "MobileNetV2 · 按宽度 40 万–400 万参数 · 笔记本和手机上很快；CPU 上的首选尝试。",
    ),
    "backbone.mobilenet_v3_small": (
        "MobileNetV3 Small · 1 M parameters · the fastest; for tiny devices.",
        "MobileNetV3 Small · 100 万参数 · 最快；适合小型设备。",
    ),
    "backbone.mobilenet_v3_large": (
        "MobileNetV3 Large · 3 M parameters · fast and more accurate than V2 at similar cost.",
        "MobileNetV3 Large · 300 万参数 · 速度快，成本相近时比 V2 更准确。",
    ),
    "backbone.efficientnet": (
        "EfficientNet-B0…B3 · 5–12 M parameters · accurate per FLOP; larger variants want larger images.",
        "EfficientNet-B0…B3 · 500 万–1200 万参数 · 计算效率高；越大的型号需要越大的图片。",
    ),
    "backbone.efficientnet_v2": (
        "EfficientNetV2-B0 · 7 M parameters · trains faster than EfficientNet.",
        "EfficientNetV2-B0 · 700 万参数 · 比 EfficientNet 训练更快。",
    ),
    "backbone.inception_v3": (
        "Inception V3 · 22 M parameters · 299 px input (at least 75 px).",
        "Inception V3 · 2200 万参数 · 输入 299 像素（至少 75 像素）。",
    ),
    "backbone.vgg16": (
        "VGG16 · 15 M parameters (base) · classic and heavy; mostly for comparison.",
        "VGG16 · 1500 万参数（主干）· 经典但笨重；主要用于对比。",
    ),
    "backbone.convnext_tiny": (
        "ConvNeXt Tiny · 28 M parameters · modern and accurate; best on a GPU.",
        "ConvNeXt Tiny · 2800 万参数 · 现代且准确；最好在 GPU 上使用。",
    ),
    # --- CLI ---
    "cli.imported": (
        "Imported {images} images into “{dataset}” ({classes} classes; {skipped} skipped) in {seconds:.1f} s.",
        "已导入 {images} 张图片到“{dataset}”（{classes} 个类别；跳过 {skipped} 个），用时 {seconds:.1f} 秒。",
    ),
    "cli.run_started": (
        "Run {run}: training {backbone} on “{dataset}”.",
        "训练 {run}：在“{dataset}”上训练 {backbone}。",
    ),
    "cli.run_done": (
        "Run {run} {status} after {epochs} epoch(s); weights used: {weights}.",
        "训练 {run} 状态 {status}，共 {epochs} 轮；使用的权重：{weights}。",
    ),
    "cli.no_datasets": ("No datasets in {path}.", "{path} 中没有数据集。"),
}


class _Keep(dict):
    """Leaves an unknown placeholder visible instead of failing a render."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def tr(key: str, lang: str = DEFAULT_LANGUAGE, /, **params: Any) -> str:
    """The message for ``key`` in ``lang`` ("en" or "zh"), with ``params`` filled in."""
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    template = pair[1] if lang == "zh" else pair[0]
    try:
        return template.format_map(_Keep(params))
    except (ValueError, TypeError):
        return template


def cli_language() -> str:
    lang = os.environ.get("LABELTUNE_LANG", DEFAULT_LANGUAGE)
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE
